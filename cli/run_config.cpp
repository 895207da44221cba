/// \file
/// \brief RunConfig <-> JSON and the task data of a run.
#include "cli/run_config.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "core/error.h"

// JSON forms of the configurations (every field, by name).
namespace ember::nn {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(LanguageModelConfig, vocab_size, d_model, n_layers, n_heads, max_len, positions,
                                   mixers, mixer_options, norm, mlp, mlp_hidden, dropout, tie_weights, bias, seed)
}  // namespace ember::nn

namespace ember::cli {

// Fields missing from the JSON keep their defaults, so checkpoints written before a field existed still load.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(RunConfig, task, data, digits, seq, examples, model, batch, steps, lr,
                                                warmup, weight_decay, seed, out, amp, loss_scaling, medusa, mtp,
                                                mtp_lambda)

namespace {

using nlohmann::json;

/// A generated task's training data (`examples` of them, 10000 when 0) and 1000 held-out examples drawn
/// with another seed.
template <class Config, class Make>
TaskBundle generated(Config c, std::int64_t examples, std::uint64_t seed, Make make) {
  TaskBundle b;
  c.num_examples = examples > 0 ? examples : 10000;
  data::TaskData train = make(c, seed);
  c.num_examples = 1000;
  data::TaskData held_out = make(c, seed + 0x9e3779b97f4a7c15ull);
  b.train = train.dataset();
  b.held_out = held_out.dataset();
  b.tokenizer = train.tokenizer;
  b.seq_len = train.seq_len;
  b.examples = held_out;
  return b;
}

TaskBundle text_task(const RunConfig& c) {
  EMBER_CHECK(!c.data.empty(), "task text needs --data FILE");
  const std::string text = data::load_text_file(c.data);
  const data::CharTokenizer tok = data::CharTokenizer::from_text(text);
  const data::TextSplit split = data::split_text(text, 0.1);
  TaskBundle b;
  b.train = std::make_shared<data::TextDataset>(split.train, c.seq, tok);
  b.held_out = std::make_shared<data::TextDataset>(split.held_out, c.seq, tok);
  b.tokenizer = tok;
  b.seq_len = c.seq;
  b.exact_match = false;
  return b;
}

}  // namespace

std::string to_json(const RunConfig& c) { return json(c).dump(); }

DType amp_dtype(const std::string& amp) {
  if (amp == "fp16") return DType::Float16;
  if (amp == "bf16") return DType::BFloat16;
  EMBER_CHECK(amp == "off", "--amp: expected off, fp16 or bf16, got '" + amp + "'");
  return DType::Float32;
}

RunConfig run_config_from_json(const std::string& text) {
  try {
    return json::parse(text).get<RunConfig>();
  } catch (const json::exception& e) {
    throw Error(std::string("run configuration: ") + e.what());
  }
}

namespace {

/// The task's data; fills the task's default sequence length when c.seq is 0.
TaskBundle make_task(RunConfig& c) {
  const auto default_seq = [&](std::int64_t s) {
    if (c.seq == 0) c.seq = s;
  };
  if (c.task == "addition") {
    data::AdditionConfig ac;
    ac.digits = c.digits;
    // Small digit counts have few distinct problems: hold out a tenth of them, at most 1000.
    const double pairs = std::pow(10.0, 2.0 * static_cast<double>(c.digits));
    ac.num_held_out = static_cast<std::int64_t>(std::min(1000.0, pairs / 10));
    ac.num_train = c.examples > 0 ? c.examples : static_cast<std::int64_t>(std::min(10000.0, pairs - ac.num_held_out));
    data::TaskSplit split = data::addition_task(ac, c.seed);
    return {split.train.dataset(), split.held_out.dataset(), split.train.tokenizer, split.train.seq_len,
            split.held_out, true};
  }
  if (c.task == "copy") {
    default_seq(20);
    data::CopyConfig cc;
    cc.length = c.seq / 2;
    return generated(cc, c.examples, c.seed, data::copy_task);
  }
  if (c.task == "selective_copy") {
    default_seq(64);
    data::SelectiveCopyConfig sc;
    sc.length = c.seq;
    sc.num_tokens = std::min<std::int64_t>(16, c.seq / 4);
    TaskBundle b = generated(sc, c.examples, c.seed, data::selective_copy_task);
    b.exact_match = false;  // scored per token, as the Mamba paper's Table 1
    return b;
  }
  if (c.task == "mqar") {
    default_seq(31);
    data::MqarConfig mc;
    mc.num_pairs = mc.num_queries = (c.seq + 1) / 4;
    return generated(mc, c.examples, c.seed, data::mqar_task);
  }
  if (c.task == "induction") {
    default_seq(63);
    data::InductionConfig ic;
    ic.length = c.seq + 1;
    return generated(ic, c.examples, c.seed, data::induction_task);
  }
  if (c.task == "text") {
    default_seq(128);
    return text_task(c);
  }
  throw Error("unknown task '" + c.task + "' (expected addition, copy, selective_copy, mqar, induction or text)");
}

}  // namespace

std::string alphabet_to_json(const std::string& alphabet) {
  json bytes = json::array();
  for (unsigned char c : alphabet) bytes.push_back(c);
  return bytes.dump();
}

std::string alphabet_from_json(const std::string& text) {
  try {
    std::string alphabet;
    for (int byte : json::parse(text).get<std::vector<int>>()) {
      EMBER_CHECK(byte >= 0 && byte < 256, "alphabet: byte value " + std::to_string(byte) + " out of range");
      alphabet += static_cast<char>(byte);
    }
    return alphabet;
  } catch (const json::exception& e) {
    throw Error(std::string("alphabet: ") + e.what());
  }
}

TaskBundle build_task(RunConfig& c) { return make_task(c); }

}  // namespace ember::cli
