/// \file
/// \brief make_run_model: the LanguageModel alone, or wrapped with Medusa heads or MTP modules.
#include "cli/run_model.h"

#include "core/error.h"

namespace ember::cli {

RunModel make_run_model(const RunConfig& c) {
  EMBER_CHECK(c.medusa >= 0 && c.mtp >= 0 && !(c.medusa > 0 && c.mtp > 0),
              "--medusa and --mtp: choose one kind of extra heads (got " + std::to_string(c.medusa) + " and " +
                  std::to_string(c.mtp) + ")");
  RunModel r;
  r.lm = std::make_shared<nn::LanguageModel>(c.model);
  r.trained = r.lm;
  if (c.medusa > 0) {
    r.medusa = std::make_shared<decoding::MedusaModel>(r.lm, c.medusa);
    r.trained = r.medusa;
    decoding::MedusaLoss loss;
    loss.joint = true;
    r.objective = loss;
  } else if (c.mtp > 0) {
    decoding::MTPConfig mc;
    mc.depth = c.mtp;
    mc.seed = c.seed + 1;
    r.mtp = std::make_shared<decoding::MTPModel>(r.lm, mc);
    r.trained = r.mtp;
    r.objective = decoding::mtp_objective(c.mtp_lambda);
  }
  return r;
}

}  // namespace ember::cli
