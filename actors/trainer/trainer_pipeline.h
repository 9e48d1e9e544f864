/*  trainer_pipeline.h: one model, from the feature store's data to an
    evaluated artifact file and the quality gate's decision.

      split     time-ordered hold-out: the latest holdout_fraction of each
                user's events is the test part (evaluation.h)
      train     the model type on the train part (hybrid: its blend tuned
                on a second split of the train part, never on the test part)
      evaluate  the new model, popularity, the active model of the type (its
                artifact, re-mapped onto today's videos) and, for hybrid, the
                EASE and item-kNN baselines, all on the same test part
      gate      pass if there is no active model, or if the new model's
                NDCG@10 is at least the active one's x (1 - tolerance)
      write     the artifact, atomically, to out_path

    The artifact holds exactly the model that was evaluated (trained on
    the train part): what is measured is what serves. The most recent
    events it did not see reach the ranker through online fold-in.

    Pure computation and local files: no database, no network. The caller
    (trainer_worker) claims the job, uploads the artifact, records the
    result.
*/
#ifndef RECSD_TRAINER_PIPELINE_H
#define RECSD_TRAINER_PIPELINE_H

#include <jansson.h>
#include <stdbool.h>

#include "config.h"
#include "training_data.h"

//  Progress: phase name, iteration (-1 = none), percent 0..100. Returns
//  nonzero to cancel the run (stop, or the registry lost the claim).
typedef int (*trainer_progress_fn)(const char *phase, int iteration, double percent, void *arg);

typedef struct {
    const config_t *cfg;
    const training_data_t *data;
    const char *model_type; //  collaborative|content|hybrid|popularity|ease|item_knn
    const json_t *params;   //  overrides of the configured hyper-parameters; may be NULL
    //  The event weights data was built with (serving configuration),
    //  recorded as params.event_weights; may be NULL (borrowed).
    const json_t *event_weights;
    const char *active_path;     //  local artifact of the type's active model; NULL = none
    const char *active_checksum; //  its registry checksum; NULL = do not compare
    const char *out_path;        //  where the new artifact goes
    trainer_progress_fn progress;
    void *progress_arg;
} trainer_pipeline_input_t;

typedef struct {
    json_t *metrics; //  {"model", "popularity", "active"|null, "baselines", "split", ...}, owned
    json_t *params;  //  the hyper-parameters used, owned
    char checksum[65];
    bool gate_passed;
    char gate_reason[256];
} trainer_pipeline_output_t;

//  Runs the whole pipeline. Returns 0 with *out filled (release it with
//  trainer_pipeline_output_clear), or -1 with a one-line reason in err
//  that may be shown to API users (no SQL, no paths beyond the model's).
int trainer_pipeline_run(const trainer_pipeline_input_t *in, trainer_pipeline_output_t *out,
                         char *err, size_t errlen);

void trainer_pipeline_output_clear(trainer_pipeline_output_t *out);

#endif
