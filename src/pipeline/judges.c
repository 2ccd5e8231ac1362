#include "pipeline/judges.h"

#include <stdlib.h>
#include <string.h>

#include "eval/judge_classifier.h"
#include "eval/judge_keyword.h"
#include "world/judge.h"

Judge *judge_from_spec(const char *spec, Err *e) {
    if (!spec || !*spec) { err_set(e, "empty judge spec (world, keyword or classifier:DIR[:THRESHOLD])"); return NULL; }
    if (!strcmp(spec, "world")) return judge_world_new();
    if (!strcmp(spec, "keyword")) return judge_keyword_new();
    if (!strncmp(spec, "classifier:", 11)) {
        char *dir = xstrdup(spec + 11);
        float threshold = 0.5f;
        // A trailing ":NUMBER" is the threshold; a ':' inside the path stays part of it.
        char *colon = strrchr(dir, ':');
        if (colon) {
            char *end;
            double t = strtod(colon + 1, &end);
            if (end != colon + 1 && *end == '\0') {
                if (!(t > 0 && t < 1)) {
                    err_set(e, "judge spec \"%s\": threshold %g is not in (0, 1)", spec, t);
                    free(dir);
                    return NULL;
                }
                threshold = (float)t;
                *colon = '\0';
            }
        }
        if (!*dir) { err_set(e, "judge spec \"%s\": no classifier folder", spec); free(dir); return NULL; }
        Judge *j = judge_classifier_new(dir, threshold, e);
        free(dir);
        return j;
    }
    err_set(e, "unknown judge \"%s\" (world, keyword or classifier:DIR[:THRESHOLD])", spec);
    return NULL;
}
