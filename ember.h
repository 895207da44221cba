/// \file
/// \brief The umbrella header: everything a user of ember needs.
#pragma once

#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/backend.h"
#include "core/creation.h"
#include "core/tensor.h"
#include "core/threads.h"
#include "core/version.h"
