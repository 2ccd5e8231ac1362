# The Gemma family against transformers + peft in float32 (eager attention): tiny random
# Gemma2ForCausalLM with every Gemma 2 feature biting (head_dim 12 != hidden / heads = 8,
# query_pre_attn_scalar 10 != head_dim, attention and final logit soft-caps that change the
# logits, sliding-window layers whose window of 4 keys is shorter than the 9-token rows and
# the 17-20-token generations), tied; one with an untied head, its own layer_types and no
# final cap; and GemmaForCausalLM (Gemma 1, legacy hidden_act "gelu"). For each
# (hfparity.family_case, as test_opt_hf does for OPT): logits and loss with a LoRA adapter
# on q, k, v, o, gate, up, down_proj; LoRA gradients and 3 AdamW steps equal to torch's;
# greedy generation with the KV cache equal to transformers' generate; the merged model;
# a peft-trained adapter in antibody; Antidote's Wanda pruning, LoRA and full mode, as
# prune_wanda_outlier computes it (hfparity.check_antidote: calibration samples of 5-19
# tokens, longer than the window, through the soft-capped attention). Each soft-cap and
# the window are shown to matter (transformers' logits change without them), and what
# antibody does not compute (exact GELU, rope scaling, bidirectional attention) is refused
# by name.
import os, sys, tempfile
sys.path.insert(0, os.path.dirname(__file__))
from hfparity import *  # noqa
import torch
from transformers import Gemma2Config, Gemma2ForCausalLM, GemmaConfig, GemmaForCausalLM

tally = Tally()
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

common = dict(vocab_size=97, hidden_size=32, intermediate_size=48, num_attention_heads=4, num_key_value_heads=2,
              head_dim=12, max_position_embeddings=64, bos_token_id=1, eos_token_id=2, pad_token_id=0,
              rms_norm_eps=1e-6, attention_dropout=0.0)
g2 = dict(common, query_pre_attn_scalar=10, sliding_window=4)
CASES = [
    # (name, class, config, scale of the random initial adapter: large enough that clipping acts)
    ("gemma2-tied", Gemma2ForCausalLM, Gemma2Config(**g2, num_hidden_layers=3, attn_logit_softcapping=3.0,
                                                    final_logit_softcapping=8.0, tie_word_embeddings=True), 0.1),
    ("gemma2-untied-types", Gemma2ForCausalLM,
     Gemma2Config(**g2, num_hidden_layers=2, layer_types=["full_attention", "sliding_attention"],
                  attn_logit_softcapping=2.0, final_logit_softcapping=None, tie_word_embeddings=False), 0.3),
    ("gemma", GemmaForCausalLM, GemmaConfig(**common, num_hidden_layers=2, hidden_act="gelu",
                                            tie_word_embeddings=True), 0.1),
]


def matters(name, base, tokens, mask, what, **change):
    """transformers' logits with one config value changed differ clearly from the model's."""
    real = mask.flatten().bool()
    with torch.no_grad():
        a = hf_load(base)(input_ids=tokens, attention_mask=mask).logits
        b = hf_load(base, **change)(input_ids=tokens, attention_mask=mask).logits
    V = a.shape[-1]
    d = (a.reshape(-1, V)[real] - b.reshape(-1, V)[real]).abs().max().item()
    tally.check(d > 1e-2, f"{name}: {what} does not change the logits ({d:.2e}): the test would not see it")


def main():
    print(versions())
    with tempfile.TemporaryDirectory() as tmp:
        refuses(tally, tmp, "gemma2-exact-gelu", Gemma2ForCausalLM(Gemma2Config(**g2, num_hidden_layers=2,
                                                                                hidden_activation="gelu")),
                "hidden_activation")
        refuses(tally, tmp, "gemma2-rope-linear", Gemma2ForCausalLM(Gemma2Config(
            **g2, num_hidden_layers=2, rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0})),
            "rope_type")
        refuses(tally, tmp, "gemma2-bidirectional", Gemma2ForCausalLM(Gemma2Config(
            **g2, num_hidden_layers=2, use_bidirectional_attention=True)), "use_bidirectional_attention")
        for i, (name, cls, cfg, init_scale) in enumerate(CASES):
            torch.manual_seed(400 + i)
            base, tokens, mask = family_case(tally, tmp, name, cls(cfg).float(), TARGETS, init_scale, 400 + i)
            check_antidote(tally, tmp, name, TARGETS, "all", 500 + i)
            if cls is not Gemma2ForCausalLM:
                continue
            L = cfg.num_hidden_layers
            matters(name, base, tokens, mask, "the sliding window", layer_types=["full_attention"] * L)
            matters(name, base, tokens, mask, "attn_logit_softcapping", attn_logit_softcapping=None)
            if cfg.final_logit_softcapping:
                matters(name, base, tokens, mask, "final_logit_softcapping", final_logit_softcapping=None)
    print(tally.summary())
    sys.exit(1 if tally.mismatches else 0)


main()
