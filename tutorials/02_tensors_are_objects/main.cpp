// Tutorial 02: a Tensor is a name bound to an object, as in Python (seed note 2). Every object has an
// identity, a type and a value; names are references to objects; some objects can change in place.
// Run: tutorial_02_tensors_are_objects [--short]. The page README.md next to this file explains each step.
#include <cstdio>
#include <string>

#include "ember.h"
#include "tutorials/tutorial.h"

using namespace ember;

namespace {

// Python's id(x): the address of the object the name refers to. Here, the TensorImpl a handle points to.
const void* id(const Tensor& t) { return t.impl().get(); }

// The first element, for short printouts.
float first(const Tensor& t) { return t.to_vector<float>()[0]; }

// Pass by value: `t` is a new handle to the caller's object. Mutating the object is visible to the
// caller; rebinding `t` is not (exactly Python's behaviour for a list argument).
void by_value(Tensor t) {
  t.add_(scalar_tensor(1));  // mutates the shared object
  t = zeros({3});            // rebinds the local name only
}

// Pass by reference: `t` IS the caller's handle, so rebinding it rebinds the caller's variable, which
// Python cannot do.
void by_reference(Tensor& t) { t = zeros({3}); }

// Pass by const reference: the usual way to take a Tensor (no reference-count traffic). The handle is
// const, so neither rebinding nor in-place methods compile through it.
double by_const_reference(const Tensor& t) { return sum(t).item(); }

}  // namespace

int main(int argc, char** argv) {
  (void)tutorial::short_mode(argc, argv);  // everything here is already quick
  tutorial::Claims claims;

  tutorial::section("1. Identity, type, value");
  // Python: a = [1., 2., 3.] creates an object and binds the name a to it.
  Tensor a = tensor({1, 2, 3});
  std::printf("id(a) = %p   type: %s on %s   value: %s\n", id(a), dtype_name(a.dtype()).c_str(),
              a.device().str().c_str(), a.str().c_str());
  // The type belongs to the object, not to the name: rebinding a to a float64 object leaves the old
  // object (still reachable through `old`) a float32 one.
  Tensor old = a;
  a = a.to(DType::Float64);
  claims.check(a.dtype() == DType::Float64 && old.dtype() == DType::Float32,
               "a.to(Float64) made a new object; the name a now refers to it, `old` still to the float32 one");
  claims.check(!a.is_same(old), "so a and old are different objects (id(a) != id(old))");
  a = old;

  tutorial::section("2. References versus copies");
  // Python: b = a binds a second name to the same object. C++: copying a Tensor copies the handle.
  Tensor b = a;
  claims.check(b.is_same(a) && id(b) == id(a), "Tensor b = a; is Python's b = a: one object, two names");
  // clone() is copy.deepcopy: a new object with new storage and an equal value.
  Tensor c = a.clone();
  claims.check(!c.is_same(a) && !c.shares_storage(a) && c.to_vector<float>() == a.to_vector<float>(),
               "a.clone() is a new object with its own storage and the same value");
  // A view is a new object (its own shape and strides) over the same storage: not `is`, but aliased.
  Tensor v = reshape(a, {3, 1});
  claims.check(!v.is_same(a) && v.shares_storage(a), "reshape(a, {3, 1}) is another object over a's storage");
  // detach() is the same: a new object over the same storage, without autograd history.
  Tensor d = a.detach();
  claims.check(!d.is_same(a) && d.shares_storage(a), "a.detach() shares the storage but not the identity");

  tutorial::section("3. Mutable versus immutable");
  // Tensors are mutable objects: an in-place method (name ending in _) changes the object, and every
  // name for it, and every view of its storage, sees the change.
  b.add_(scalar_tensor(10));
  std::printf("after b.add_(10): a = %s\n", a.str().c_str());
  claims.check(first(a) == 11 && first(v) == 11 && first(c) == 1,
               "b.add_(10) changed a and its view v (same object / storage) but not the clone c");
  // An out-of-place op makes a new object and rebinds the name, like Python's b = b + 10 for an int.
  b = b + 10.0;
  claims.check(!b.is_same(a) && first(a) == 11 && first(b) == 21,
               "b = b + 10 rebinds b to a new object; a keeps its value");
  // The storage counts in-place edits: its version is how autograd notices them (section 5).
  const std::uint64_t before = a.version();
  a.mul_(2.0);
  claims.check(a.version() == before + 1 && v.version() == a.version(),
               "a.mul_(2) bumped the storage's version counter, which views share");

  tutorial::section("4. Pass by value, by reference, by const reference");
  // Python passes every argument the same way: the function's parameter is a new name bound to the
  // caller's object ("call by sharing"). A C++ Tensor passed by value behaves exactly like that.
  Tensor p = tensor({1, 2, 3});
  const Tensor original = p;  // a second name for p's object, to compare identities with
  by_value(p);
  claims.check(p.is_same(original) && first(p) == 2,
               "by_value(p): the add_ inside reached the caller's object, the rebinding did not");
  by_reference(p);
  claims.check(!p.is_same(original) && first(p) == 0, "by_reference(p): the function rebound the caller's variable p");
  claims.check(by_const_reference(tensor({1, 2, 3})) == 6, "by_const_reference reads without copying the handle");

  tutorial::section("5. The version counter catches a bad in-place edit");
  // exp's backward needs its own output (d exp(x)/dx = exp(x)), so ExpBackward saves y and the
  // version y had. Editing y in place afterwards would silently make the gradient wrong; instead
  // backward checks the version and throws.
  Tensor x = tensor({0.5, -1.0, 2.0}).requires_grad_();
  Tensor y = exp(x);
  y.add_(scalar_tensor(1));  // y changed after ExpBackward saved it
  bool caught = false;
  try {
    sum(y).backward();
  } catch (const Error& e) {
    caught = true;
    std::printf("backward threw: %s\n", e.what());
  }
  claims.check(caught, "y = exp(x); y.add_(1); backward throws instead of using the modified y");
  // The fix: an out-of-place op leaves the saved y untouched, and the gradient is exp(x) as it should be.
  x.set_grad(Tensor());  // start from no gradient, whatever the failed pass left
  Tensor y2 = exp(x) + 1.0;
  sum(y2).backward();
  const double err = max(abs(x.grad() - exp(x.detach()))).item();
  claims.check(err < 1e-6, "y = exp(x) + 1 (out of place) backpropagates d/dx = exp(x)");

  return claims.exit_code();
}
