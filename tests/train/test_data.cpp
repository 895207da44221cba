/// \file
/// \brief Data pipeline tests: the character tokenizer against hand-built alphabets, datasets against
/// the rows they were made from, and the loader's orders by counting (each example once per epoch,
/// permutations uniform over all n!), by reproducing them (same seed, restored state) and by timing.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <unistd.h>

#include "helpers.h"
#include "train/data/dataset.h"
#include "train/data/loader.h"
#include "train/data/tokenizer.h"

using namespace ember;
using namespace ember::data;

namespace {

std::vector<std::int64_t> ints(const Tensor& t) { return t.to_vector<std::int64_t>(); }

/// inputs [n, 2] Int64 with row i = (i, 100 + i), targets [n] = 7 i: every row says which example it is.
std::shared_ptr<TensorDataset> numbered(std::int64_t n) {
  std::vector<std::int64_t> in, tg;
  for (std::int64_t i = 0; i < n; ++i) {
    in.insert(in.end(), {i, 100 + i});
    tg.push_back(7 * i);
  }
  return std::make_shared<TensorDataset>(from_vector(in, {n, 2}), from_vector(tg, {n}));
}

/// The example numbers of a batch of `numbered`, after checking that the rows are the dataset's.
std::vector<std::int64_t> batch_ids(const Batch& b) {
  const auto in = ints(b.input), tg = ints(b.target);
  REQUIRE(b.input.dim() == 2);
  std::vector<std::int64_t> ids;
  for (std::int64_t r = 0; r < b.input.size(0); ++r) {
    CHECK(in[2 * r + 1] == 100 + in[2 * r]);
    CHECK(tg[r] == 7 * in[2 * r]);
    ids.push_back(in[2 * r]);
  }
  return ids;
}

/// The example numbers of the next `batches` batches, concatenated.
std::vector<std::int64_t> take(DataLoader& loader, std::int64_t batches) {
  std::vector<std::int64_t> ids;
  for (std::int64_t i = 0; i < batches; ++i) {
    const auto b = batch_ids(loader.next());
    ids.insert(ids.end(), b.begin(), b.end());
  }
  return ids;
}

/// A dataset without get_batch: example i is input (i, i * i) and target i % 2.
class Squares : public Dataset {
 public:
  std::int64_t size() const override { return 5; }
  Example get(std::int64_t i) const override {
    check_example_index("Squares::get", i, size());
    return {from_vector(std::vector<std::int64_t>{i, i * i}, {2}), from_vector(std::vector<std::int64_t>{i % 2}, {})};
  }
};

std::filesystem::path temp_file(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("ember_test_data_" + std::to_string(getpid()) + "_" + name);
}

}  // namespace

// --- tokenizer ---

TEST_CASE("CharTokenizer: ids are positions in the byte-sorted alphabet of a text") {
  const CharTokenizer tok = CharTokenizer::from_text("hello world");
  CHECK(tok.alphabet() == " dehlorw");
  CHECK(tok.vocab_size() == 8);
  CHECK(tok.encode("hello") == std::vector<std::int64_t>{3, 2, 4, 4, 5});
  CHECK(tok.decode(std::vector<std::int64_t>{7, 5, 6, 4, 1}) == "world");
  CHECK(tok.decode(tok.encode("low rode")) == "low rode");
  CHECK(tok.id('w') == 7);
  CHECK(tok.contains('h'));
  CHECK_FALSE(tok.contains('z'));
  CHECK(tok.decode(from_vector(std::vector<std::int64_t>{3, 2}, {2})) == "he");
  CHECK(CharTokenizer::from_text("").vocab_size() == 0);
}

TEST_CASE("CharTokenizer: an explicit alphabet keeps its order, bytes, not code points") {
  const CharTokenizer tok("cab");
  CHECK(tok.encode("abcab") == std::vector<std::int64_t>{1, 2, 0, 1, 2});
  const std::string text = "a\xc3\xa9";  // "aé": é is two bytes in UTF-8
  const CharTokenizer utf = CharTokenizer::from_text(text);
  CHECK(utf.alphabet() == std::string("a\xa9\xc3"));  // unsigned byte order: 0x61 < 0xa9 < 0xc3
  CHECK(utf.encode(text) == std::vector<std::int64_t>{0, 2, 1});
  CHECK(utf.decode(utf.encode(text)) == text);
}

TEST_CASE("CharTokenizer: errors name the character or id and its position") {
  const CharTokenizer tok("ab");
  CHECK_THROWS_EMBER(tok.encode("abxa"), "CharTokenizer::encode: unknown character 'x' at position 2");
  CHECK_THROWS_EMBER(tok.encode("a\nb"), "unknown character '\\n' at position 1");
  CHECK_THROWS_EMBER(tok.encode("\xff"), "unknown character '\\xff' at position 0");
  CHECK_THROWS_EMBER(tok.decode(std::vector<std::int64_t>{0, 5}),
                     "CharTokenizer::decode: id 5 at position 1 is outside [0, 2)");
  CHECK_THROWS_EMBER(tok.decode(std::vector<std::int64_t>{-1}), "id -1 at position 0");
  CHECK_THROWS_EMBER(tok.id('q'), "CharTokenizer::id: character 'q' is not in the alphabet");
  CHECK_THROWS_EMBER(CharTokenizer("abca"), "character 'a' appears twice in the alphabet (positions 0 and 3)");
}

// --- datasets ---

TEST_CASE("TensorDataset: example i is row i of each tensor, lengths and indices are checked") {
  const Tensor inputs = reshape(arange(12, DType::Float32), {4, 3});
  const Tensor targets = from_vector(std::vector<std::int64_t>{10, 11, 12, 13}, {4});
  const TensorDataset ds(inputs, targets);
  CHECK(ds.size() == 4);
  const Example e = ds.get(2);
  CHECK(e.input.to_vector<float>() == std::vector<float>{6, 7, 8});
  CHECK(e.target.dim() == 0);
  CHECK(e.target.item() == 12);
  const Example b = ds.get_batch({3, 0, 3});
  CHECK(b.input.shape() == Shape{3, 3});
  CHECK(b.input.to_vector<float>() == std::vector<float>{9, 10, 11, 0, 1, 2, 9, 10, 11});
  CHECK(ints(b.target) == std::vector<std::int64_t>{13, 10, 13});
  CHECK_THROWS_EMBER(ds.get(4), "TensorDataset::get: index 4 is out of range [0, 4)");
  CHECK_THROWS_EMBER(ds.get(-1), "TensorDataset::get: index -1 is out of range [0, 4)");
  CHECK_THROWS_EMBER(ds.get_batch({0, 9}), "TensorDataset::get_batch: index 9 is out of range [0, 4)");
  CHECK_THROWS_EMBER(TensorDataset(inputs, zeros({5}, DType::Int64)),
                     "TensorDataset: inputs [4, 3] and targets [5] have different lengths (4 != 5)");
  CHECK_THROWS_EMBER(TensorDataset(inputs, scalar_tensor(1)), "need a dim 0");
  CHECK_THROWS_EMBER(TensorDataset(Tensor(), targets), "must be defined");
}

TEST_CASE("Dataset::get_batch stacks examples for datasets that do not gather rows themselves") {
  const Squares sq;
  const Example b = sq.get_batch({4, 1, 2});
  CHECK(b.input.shape() == Shape{3, 2});
  CHECK(ints(b.input) == std::vector<std::int64_t>{4, 16, 1, 1, 2, 4});
  CHECK(ints(b.target) == std::vector<std::int64_t>{0, 1, 0});
  DataLoader loader(std::make_shared<Squares>(), 2, false, 0);
  CHECK(ints(loader.next().input) == std::vector<std::int64_t>{0, 0, 1, 1});
  CHECK(ints(loader.next().input) == std::vector<std::int64_t>{2, 4, 3, 9});
  CHECK(ints(loader.next().target) == std::vector<std::int64_t>{0});
}

TEST_CASE("TextDataset: input = chars (i, i + T), target = chars (i + 1, i + T + 1)") {
  const std::string text = "the cat sat";
  const TextDataset ds(text, 4);
  CHECK(ds.size() == 7);
  CHECK(ds.seq_len() == 4);
  CHECK(ds.tokenizer().alphabet() == " acehst");
  for (std::int64_t i = 0; i < ds.size(); ++i) {
    const Example e = ds.get(i);
    CHECK(e.input.shape() == Shape{4});
    CHECK(e.input.dtype() == DType::Int64);
    CHECK(ds.tokenizer().decode(e.input) == text.substr(i, 4));
    CHECK(ds.tokenizer().decode(e.target) == text.substr(i + 1, 4));
  }
  const Example b = ds.get_batch({6, 0});
  CHECK(b.input.shape() == Shape{2, 4});
  CHECK(ds.tokenizer().decode(b.input) == "t sathe ");
  CHECK(ds.tokenizer().decode(b.target) == " sathe c");
  CHECK_THROWS_EMBER(ds.get(7), "TextDataset::get: index 7 is out of range [0, 7)");
  CHECK_THROWS_EMBER(ds.get_batch({7}), "TextDataset::get_batch: index 7 is out of range [0, 7)");
  CHECK(TextDataset("abcd", 3).size() == 1);  // exactly seq_len + 1 characters: one window
}

TEST_CASE("TextDataset: shared tokenizer for a held-out tail, and clear errors") {
  const std::string text = "abcabcabcxyz";
  const TextSplit split = split_text(text, 0.25);
  CHECK(split.train == "abcabcabc");
  CHECK(split.held_out == "xyz");
  const CharTokenizer tok = CharTokenizer::from_text(text);
  const TextDataset held(split.held_out, 2, tok);
  CHECK(held.size() == 1);
  CHECK(ints(held.get(0).input) == std::vector<std::int64_t>{3, 4});  // x and y in "abcxyz"
  CHECK_THROWS_EMBER(TextDataset(split.held_out, 2, CharTokenizer::from_text(split.train)),
                     "unknown character 'x' at position 0");
  CHECK_THROWS_EMBER(TextDataset("abc", 3), "TextDataset: the text has 3 characters, fewer than seq_len + 1 = 4");
  CHECK_THROWS_EMBER(TextDataset("", 1), "the text has 0 characters");
  CHECK_THROWS_EMBER(TextDataset("abc", 0), "TextDataset: seq_len must be at least 1, got 0");
}

TEST_CASE("split_text: the held-out part is the tail, round(fraction * length) characters") {
  CHECK(split_text("0123456789", 0.2).train == "01234567");
  CHECK(split_text("0123456789", 0.2).held_out == "89");
  CHECK(split_text("0123456789", 0.0).held_out.empty());
  CHECK(split_text("0123456789", 0.14).held_out == "9");
  CHECK(split_text("0123456789", 0.16).held_out == "89");
  CHECK_THROWS_EMBER(split_text("abc", 1.0), "split_text: held_out_fraction must be in [0, 1), got 1");
  CHECK_THROWS_EMBER(split_text("abc", -0.5), "got -0.5");
}

TEST_CASE("load_text_file: the bytes of the file, missing and empty files are errors") {
  const auto path = temp_file("text.txt");
  const std::string text("line one\nline two\n\xc3\xa9\0end", 24);
  {
    std::ofstream out(path, std::ios::binary);
    out << text;
  }
  CHECK(load_text_file(path.string()) == text);
  { std::ofstream out(path, std::ios::binary | std::ios::trunc); }
  CHECK_THROWS_EMBER(load_text_file(path.string()), "' is empty");
  std::filesystem::remove(path);
  const std::string missing = "load_text_file: cannot open '" + path.string() + "'";
  CHECK_THROWS_EMBER(load_text_file(path.string()), missing.c_str());
}

// --- loader ---

TEST_CASE("DataLoader: every example exactly once per epoch, in batches of the dataset's rows") {
  const auto ds = numbered(10);
  DataLoader loader(ds, 3, true, 42);
  CHECK(loader.batches_per_epoch() == 4);
  for (int epoch = 0; epoch < 3; ++epoch) {
    std::vector<std::int64_t> sizes;
    std::vector<std::int64_t> seen;
    for (int b = 0; b < 4; ++b) {
      const Batch batch = loader.next();
      CHECK(batch.input.shape()[1] == 2);
      sizes.push_back(batch.input.size(0));
      const auto ids = batch_ids(batch);
      seen.insert(seen.end(), ids.begin(), ids.end());
    }
    CHECK(sizes == std::vector<std::int64_t>{3, 3, 3, 1});
    std::sort(seen.begin(), seen.end());
    CHECK(seen == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(loader.state() == LoaderState{epoch + 1, 0});
  }
}

TEST_CASE("DataLoader: orders differ between epochs and seeds, repeat for the same seed") {
  const auto ds = numbered(50);
  DataLoader a(ds, 8, true, 1), b(ds, 8, true, 1), c(ds, 8, true, 2);
  const auto a0 = take(a, 7), a1 = take(a, 7);
  CHECK(a0 != a1);
  CHECK(take(b, 14) == [&] {
    auto both = a0;
    both.insert(both.end(), a1.begin(), a1.end());
    return both;
  }());
  CHECK(take(c, 7) != a0);
  DataLoader plain(ds, 8, false, 1);
  const auto p = take(plain, 7);
  for (std::int64_t i = 0; i < 50; ++i) CHECK(p[i] == i);
  CHECK(take(plain, 7) == p);  // no shuffling: the same order every epoch
}

TEST_CASE("DataLoader: shuffles are uniform over all permutations (Fisher-Yates, not Sattolo)") {
  // 4 examples have 24 orders; over 4800 epochs each should appear about 200 times. A biased shuffle
  // (drawing j from [0, i) instead of [0, i]) would give only the 6 cyclic orders.
  DataLoader loader(numbered(4), 4, true, 7);
  std::map<std::vector<std::int64_t>, int> counts;
  for (int e = 0; e < 4800; ++e) ++counts[batch_ids(loader.next())];
  CHECK(counts.size() == 24);
  for (const auto& entry : counts) {
    const int count = entry.second;  // (not a structured binding: clang 14 cannot capture one)
    CAPTURE(count);
    CHECK(count > 130);  // about 5 standard deviations (sqrt(200 * 23 / 24) = 13.8) each side
    CHECK(count < 270);
  }
}

TEST_CASE("DataLoader: a loader restored from state() continues exactly as the original") {
  const auto ds = numbered(23);
  DataLoader original(ds, 5, true, 99);
  CHECK(original.batches_per_epoch() == 5);
  std::vector<LoaderState> states;
  std::vector<std::vector<std::int64_t>> batches;
  for (int i = 0; i < 17; ++i) {
    states.push_back(original.state());
    batches.push_back(batch_ids(original.next()));
  }
  CHECK(states[7] == LoaderState{1, 2});
  for (int from : {0, 3, 5, 7, 12}) {
    CAPTURE(from);
    DataLoader restored(ds, 5, true, 99);
    restored.set_state(states[from]);
    for (int i = from; i < 17; ++i) CHECK(batch_ids(restored.next()) == batches[i]);
  }
  DataLoader end_of_epoch(ds, 5, true, 99);
  end_of_epoch.set_state({0, 5});  // an epoch's last batch taken: the same as the next epoch's start
  CHECK(end_of_epoch.state() == LoaderState{1, 0});
  CHECK(batch_ids(end_of_epoch.next()) == batches[5]);
  CHECK_THROWS_EMBER(end_of_epoch.set_state({0, 6}), "DataLoader::set_state: {epoch 0, position 6} is not a position");
  CHECK_THROWS_EMBER(end_of_epoch.set_state({-1, 0}), "with 5 batches per epoch");
}

TEST_CASE("DataLoader: drop_last skips the short batch, too few examples is an error") {
  const auto ds = numbered(10);
  DataLoader loader(ds, 3, true, 5, true);
  CHECK(loader.batches_per_epoch() == 3);
  std::set<std::int64_t> dropped;
  for (int epoch = 0; epoch < 8; ++epoch) {
    std::vector<std::int64_t> seen = take(loader, 3);
    CHECK(seen.size() == 9);
    std::set<std::int64_t> distinct(seen.begin(), seen.end());
    CHECK(distinct.size() == 9);
    for (std::int64_t i = 0; i < 10; ++i)
      if (!distinct.count(i)) dropped.insert(i);
  }
  CHECK(dropped.size() > 1);  // a different example is left out as the order changes
  CHECK(DataLoader(ds, 10, false, 0, true).batches_per_epoch() == 1);
  CHECK_THROWS_EMBER(DataLoader(ds, 11, false, 0, true),
                     "DataLoader: with drop_last, 10 examples make no full batch of 11");
  CHECK(DataLoader(ds, 11, false, 0).next().input.size(0) == 10);
  CHECK_THROWS_EMBER(DataLoader(ds, 0, false, 0), "DataLoader: batch_size must be at least 1, got 0");
  CHECK_THROWS_EMBER(DataLoader(nullptr, 2, false, 0), "DataLoader: the dataset is null");
  CHECK_THROWS_EMBER(DataLoader(std::make_shared<TensorDataset>(zeros({0, 2}), zeros({0})), 2, false, 0),
                     "DataLoader: the dataset is empty");
}

TEST_CASE("DataLoader over a TextDataset: targets are inputs shifted by one") {
  std::string text;
  for (int i = 0; i < 40; ++i) text += "abcdefghij"[(i * 7) % 10];
  DataLoader loader(std::make_shared<TextDataset>(text, 8), 4, true, 3);
  const Batch b = loader.next();
  CHECK(b.input.shape() == Shape{4, 8});
  CHECK(b.target.shape() == Shape{4, 8});
  const auto in = ints(b.input), tg = ints(b.target);
  for (int r = 0; r < 4; ++r)
    for (int t = 0; t + 1 < 8; ++t) CHECK(tg[r * 8 + t] == in[r * 8 + t + 1]);
}

TEST_CASE("DataLoader: a batch of 64 sequences of 128 tokens takes well under a millisecond") {
  const std::int64_t n = 4096, t = 128;
  const auto ds = std::make_shared<TensorDataset>(randint(0, 65, {n, t}), randint(0, 65, {n, t}));
  DataLoader loader(ds, 64, true, 0);
  loader.next();  // the epoch's permutation is computed once, here
  const int reps = 60;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) loader.next();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("DataLoader: " << 1e6 * seconds / reps << " us per batch of 64 x 128");
  CHECK(seconds / reps < 1e-3);
}
