/// \file
/// \brief RunConfig <-> JSON and the task data of a run.
#include "cli/run_config.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace ember::cli {

namespace {

using nlohmann::json;

json model_json(const nn::LanguageModelConfig& m) {
  return {{"vocab_size", m.vocab_size}, {"d_model", m.d_model},     {"n_layers", m.n_layers},
          {"n_heads", m.n_heads},       {"max_len", m.max_len},     {"positions", m.positions},
          {"mixers", m.mixers},         {"norm", m.norm},           {"mlp", m.mlp},
          {"mlp_hidden", m.mlp_hidden}, {"dropout", m.dropout},     {"tie_weights", m.tie_weights},
          {"bias", m.bias},             {"seed", m.seed},           {"mixer_options", m.mixer_options}};
}

nn::LanguageModelConfig model_from(const json& j) {
  nn::LanguageModelConfig m;
  m.vocab_size = j.at("vocab_size");
  m.d_model = j.at("d_model");
  m.n_layers = j.at("n_layers");
  m.n_heads = j.at("n_heads");
  m.max_len = j.at("max_len");
  m.positions = j.at("positions");
  m.mixers = j.at("mixers").get<std::vector<std::string>>();
  m.norm = j.at("norm");
  m.mlp = j.at("mlp");
  m.mlp_hidden = j.at("mlp_hidden");
  m.dropout = j.at("dropout");
  m.tie_weights = j.at("tie_weights");
  m.bias = j.at("bias");
  m.seed = j.at("seed");
  m.mixer_options = j.at("mixer_options").get<std::map<std::string, double>>();
  return m;
}

/// A generated task's training and held-out data: held-out examples come from another seed.
template <class Config, class Make>
TaskBundle generated(Config c, std::int64_t examples, std::uint64_t seed, Make make) {
  TaskBundle b;
  if (examples > 0) c.num_examples = examples;
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

std::string to_json(const RunConfig& c) {
  const json j = {{"task", c.task},   {"data", c.data},         {"digits", c.digits}, {"seq", c.seq},
                  {"examples", c.examples}, {"model", model_json(c.model)}, {"batch", c.batch},
                  {"steps", c.steps}, {"lr", c.lr},             {"warmup", c.warmup}, {"weight_decay", c.weight_decay},
                  {"seed", c.seed},   {"out", c.out}};
  return j.dump();
}

RunConfig run_config_from_json(const std::string& text) {
  try {
    const json j = json::parse(text);
    RunConfig c;
    c.task = j.at("task");
    c.data = j.at("data");
    c.digits = j.at("digits");
    c.seq = j.at("seq");
    c.examples = j.at("examples");
    c.model = model_from(j.at("model"));
    c.batch = j.at("batch");
    c.steps = j.at("steps");
    c.lr = j.at("lr");
    c.warmup = j.at("warmup");
    c.weight_decay = j.at("weight_decay");
    c.seed = j.at("seed");
    c.out = j.at("out");
    return c;
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
    return generated(cc, c.examples > 0 ? c.examples : 10000, c.seed, data::copy_task);
  }
  if (c.task == "selective_copy") {
    default_seq(64);
    data::SelectiveCopyConfig sc;
    sc.length = c.seq;
    sc.num_tokens = std::min<std::int64_t>(16, c.seq / 4);
    return generated(sc, c.examples > 0 ? c.examples : 10000, c.seed, data::selective_copy_task);
  }
  if (c.task == "mqar") {
    default_seq(31);
    data::MqarConfig mc;
    mc.num_pairs = mc.num_queries = (c.seq + 1) / 4;
    return generated(mc, c.examples > 0 ? c.examples : 10000, c.seed, data::mqar_task);
  }
  if (c.task == "induction") {
    default_seq(63);
    data::InductionConfig ic;
    ic.length = c.seq + 1;
    return generated(ic, c.examples > 0 ? c.examples : 10000, c.seed, data::induction_task);
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

TaskBundle build_task(RunConfig& c) {
  TaskBundle b = make_task(c);
  c.seq = b.seq_len;
  return b;
}

}  // namespace ember::cli
