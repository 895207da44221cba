/// \file
/// \brief nn::Sequential (modules applied in order) and nn::ModuleList (an indexed list of submodules).
#pragma once

#include <memory>

#include "layers/module.h"

namespace ember::nn {

/// y = m_n(...m_2(m_1(x))); submodules are named "0", "1", ...
class Sequential : public Module {
 public:
  Sequential();
  /// Modules in the order they run.
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules);
  /// Appends a module.
  void push_back(std::shared_ptr<Module> module);
  /// Applies every module in turn.
  Tensor forward(const Tensor& x) override;
  /// How many modules.
  std::size_t size() const { return named_children().size(); }
};

/// A list of submodules named "0", "1", ...; has no forward of its own.
class ModuleList : public Module {
 public:
  ModuleList();
  /// Appends a module.
  void push_back(std::shared_ptr<Module> module);
  /// How many modules.
  std::size_t size() const { return named_children().size(); }
  /// Module i (throws when out of range).
  const std::shared_ptr<Module>& operator[](std::size_t i) const;
  /// Module i cast to M (throws when out of range or of another type).
  template <class M>
  std::shared_ptr<M> at(std::size_t i) const {
    auto m = std::dynamic_pointer_cast<M>((*this)[i]);
    EMBER_CHECK(m != nullptr, "ModuleList: module " + std::to_string(i) + " is a " + (*this)[i]->type_name());
    return m;
  }
};

}  // namespace ember::nn
