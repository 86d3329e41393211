"""A tiny randomly initialised causal LM and character tokenizer, built offline.

Real judge weights cannot be downloaded here; this model exercises exactly the
code path of a real one (chat template, padding, ``generate``, next-token
probabilities, sequence classification) in milliseconds. Its verdicts are
noise, which is the point: the grader must turn noise into a score in range or
a clear flag, never a crash.
"""

from __future__ import annotations

from typing import Any

__all__ = ["tiny_causal_lm", "tiny_reward_model", "tiny_tokenizer"]

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def tiny_tokenizer() -> Any:
    """A character-level fast tokenizer: every printable ASCII character is one token."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, "[EOS]": 2}
    for code in [*range(32, 127), 10]:
        vocab.setdefault(chr(code), len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]", eos_token="[EOS]"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _config(tokenizer: Any, hidden: int, layers: int, **extra: Any) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        **extra,
    )


def tiny_causal_lm(seed: int = 0, hidden: int = 32, layers: int = 2) -> tuple[Any, Any]:
    """``(model, tokenizer)``: a random Llama-architecture causal LM."""
    import torch
    from transformers import LlamaForCausalLM

    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    return LlamaForCausalLM(_config(tokenizer, hidden, layers)).eval(), tokenizer


def tiny_reward_model(seed: int = 0, hidden: int = 32, layers: int = 2) -> tuple[Any, Any]:
    """``(model, tokenizer)``: a random Llama sequence classifier with one logit."""
    import torch
    from transformers import LlamaForSequenceClassification

    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    return LlamaForSequenceClassification(_config(tokenizer, hidden, layers, num_labels=1)).eval(), tokenizer
