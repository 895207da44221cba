/// \file
/// \brief nn::Sequential and nn::ModuleList.
#include "layers/containers.h"

namespace ember::nn {

Sequential::Sequential() : Module("Sequential") {}

Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) : Sequential() {
  for (auto& m : modules) push_back(std::move(m));
}

void Sequential::push_back(std::shared_ptr<Module> module) {
  register_module(std::to_string(size()), std::move(module));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (const auto& [name, m] : named_children()) y = m->forward(y);
  return y;
}

ModuleList::ModuleList() : Module("ModuleList") {}

void ModuleList::push_back(std::shared_ptr<Module> module) {
  register_module(std::to_string(size()), std::move(module));
}

const std::shared_ptr<Module>& ModuleList::operator[](std::size_t i) const {
  EMBER_CHECK(i < size(), "ModuleList: index " + std::to_string(i) + " out of range for " + std::to_string(size()) +
                              " modules");
  return named_children()[i].second;
}

}  // namespace ember::nn
