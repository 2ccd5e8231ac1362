# The OPT family against transformers + peft in float32 (eager attention): tiny random
# OPTForCausalLM, pre-norm with a tied head and post-norm (do_layer_norm_before=false, no
# final LayerNorm) with an untied head. For each, as test_model_hf does for Llama:
#   - logits and loss of a right-padded batch with a LoRA adapter on q_proj, k_proj,
#     v_proj, out_proj, fc1, fc2 (antibody's random adapter, loaded by peft);
#   - LoRA gradients of that loss; 3 AdamW steps (clipping at 1.0) equal to torch's;
#   - greedy generation with the KV cache (one sequence at a time and decoded together)
#     equal to transformers' generate with peft's model;
#   - the merged model antibody writes loads in transformers as peft's merge_and_unload;
#   - an adapter peft trains on the OPT model loads in antibody with peft's logits,
#     unmerged and merged.
# Antidote's Wanda pruning (LoRA and full mode) with OPT's projection inputs, as
# prune_wanda_outlier computes it. And project_in/project_out (word_embed_proj_dim !=
# hidden_size, OPT-350M) and other activations are refused by name.
import os, sys, tempfile
sys.path.insert(0, os.path.dirname(__file__))
from hfparity import *  # noqa
import torch
from transformers import OPTConfig, OPTForCausalLM

tally = Tally()
TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]

common = dict(vocab_size=97, hidden_size=32, ffn_dim=48, num_hidden_layers=2, num_attention_heads=4,
              max_position_embeddings=64, bos_token_id=1, eos_token_id=2, pad_token_id=0, dropout=0.0,
              attention_dropout=0.0, word_embed_proj_dim=32)
CASES = [
    # (name, config, scale of the random initial adapter: large enough that clipping acts)
    ("opt-prenorm-tied", OPTConfig(**common, do_layer_norm_before=True, tie_word_embeddings=True), 0.1),
    ("opt-postnorm-untied", OPTConfig(**common, do_layer_norm_before=False, tie_word_embeddings=False), 0.3),
]


def main():
    print(versions())
    with tempfile.TemporaryDirectory() as tmp:
        refuses(tally, tmp, "opt-project-in-out", OPTForCausalLM(OPTConfig(**{**common, "word_embed_proj_dim": 16})),
                "word_embed_proj_dim")
        refuses(tally, tmp, "opt-gelu", OPTForCausalLM(OPTConfig(**common, activation_function="gelu")), "activation_function")
        for i, (name, cfg, init_scale) in enumerate(CASES):
            torch.manual_seed(200 + i)
            model = OPTForCausalLM(cfg).float()
            family_case(tally, tmp, name, model, TARGETS, init_scale, 200 + i)
            check_antidote(tally, tmp, name, TARGETS, "q,k,v,o,up,down", 300 + i)
    print(tally.summary())
    sys.exit(1 if tally.mismatches else 0)


main()
