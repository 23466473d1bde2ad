"""Prompts in words (chapter 11): a word-level tokenizer, prompts made from labels, a small
transformer text encoder. Nothing is downloaded: the vocabulary is written out below.

    "a thick seven"  -> tokens [BOS, a, thick, seven, PAD, ...]     (Tokenizer.encode)
    tokens           -> context (B, L, dim), one vector per token  (TextEncoder)

The U-Net reads the context through cross-attention (unet.CrossAttention): queries from the image
(or latent) positions, keys and values from the tokens, as in latent diffusion (Rombach et al. 2022,
arXiv 2112.10752, sec. 3.3), where the text encoder is trained together with the U-Net (their eq. 3).
The empty prompt "" is the null condition for classifier-free guidance over text (Ho & Salimans
2022): training replaces a prompt by "" with probability p_uncond, exactly like label dropout.

Attributes come from the images themselves, since MNIST has no captions: a digit is "thick" or
"thin" when its ink (the share of bright pixels) is in the top or bottom third of its class, "slanted"
or "upright" likewise by its slant (the image moment mu11 / mu02). Fashion-MNIST items are "dark" or
"light" by the mean brightness of the item's own pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .tokens import BOS, PAD, null_tokens  # noqa: F401  (re-exported: the text chapter and tests use them)

SPECIAL = ("<pad>", "<bos>")
MAX_TOKENS = 8  # BOS + up to 7 words

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")



@dataclass(frozen=True)
class PromptWords:
    """The words the prompts of one dataset use. These are English words, not the dataset's label
    strings (data.DATASETS keeps those as published: Fashion-MNIST's "Trouser" is prompted as "trousers")."""

    classes: tuple[tuple[str, ...], ...]  # per class, the words that name it; the first is the canonical one
    nouns: tuple[str, ...]  # what names an image by its attributes only: "a thick digit", "a dark item"
    attributes: dict[str, tuple[str, str]]  # attribute -> (low word, high word), measured by attribute_scores


WORDS = {
    "mnist": PromptWords(
        classes=tuple((w, str(d)) for d, w in enumerate(DIGIT_WORDS)),
        nouns=("digit", "number"),
        attributes={"ink": ("thin", "thick"), "slant": ("upright", "slanted")}),
    "fashion_mnist": PromptWords(
        classes=(("t-shirt", "top", "tee"), ("trousers", "pants"), ("pullover", "sweater"), ("dress",),
                 ("coat",), ("sandal",), ("shirt",), ("sneaker", "trainer"), ("bag", "handbag"),
                 ("ankle boot", "boot")),
        nouns=("item", "piece"),
        attributes={"brightness": ("dark", "light")}),
}
PLURAL = {"trousers", "pants"}  # no article: "dark trousers"
FILLER = ("a", "an", "the", "of")


def class_words(dataset: str) -> list[set[str]]:
    """Per class, the words that name it ("ankle" and "boot" both name an ankle boot)."""
    return [{w for name in names for w in name.split()} for names in WORDS[dataset].classes]


def vocabulary(dataset: str) -> list[str]:
    """Every word the tokenizer knows for a dataset, specials first. Ids are positions in this list."""
    if dataset not in WORDS:
        raise ValueError(f"no text vocabulary for {dataset!r}; text prompts exist for {', '.join(WORDS)}.")
    own = WORDS[dataset]
    words = [w for names in own.classes for name in names for w in name.split()]
    words += [w for pair in own.attributes.values() for w in pair] + list(own.nouns) + list(FILLER)
    return list(SPECIAL) + sorted(set(words), key=words.index)


class Tokenizer:
    """Word-level: lower-case, split on spaces (a hyphen stays inside its word: "t-shirt"), look up.

    An unknown word raises a ValueError that lists the whole vocabulary; so does a prompt longer
    than max_tokens - 1 words.
    """

    def __init__(self, words: list[str], max_tokens: int = MAX_TOKENS):
        if list(words[:2]) != list(SPECIAL):
            raise ValueError(f"a vocabulary starts with {SPECIAL}, got {words[:2]}.")
        self.words, self.max_tokens = list(words), max_tokens
        self.ids = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def split(self, prompt: str) -> list[str]:
        if not isinstance(prompt, str):
            raise ValueError(f"a prompt is a string, got {type(prompt).__name__}.")
        words = prompt.lower().replace(",", " ").replace(".", " ").split()
        unknown = [w for w in words if w not in self.ids or w in SPECIAL]
        if unknown:
            known = ", ".join(self.words[len(SPECIAL):])
            raise ValueError(f"unknown word {unknown[0]!r} in prompt {prompt!r}; the vocabulary is: {known}.")
        if len(words) > self.max_tokens - 1:
            raise ValueError(f"prompt {prompt!r} has {len(words)} words; at most {self.max_tokens - 1} fit.")
        return words

    def encode(self, prompts) -> torch.Tensor:
        """A prompt or a list of prompts -> long tensor (N, max_tokens): BOS, the words, then PAD."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        out = torch.full((len(prompts), self.max_tokens), PAD, dtype=torch.long)
        for i, p in enumerate(prompts):
            ids = [BOS] + [self.ids[w] for w in self.split(p)]
            out[i, : len(ids)] = torch.tensor(ids)
        return out

    def decode(self, tokens: torch.Tensor) -> list[str]:
        """Token rows back to prompts (BOS and PAD dropped)."""
        return [" ".join(self.words[i] for i in row.tolist() if i > BOS) for row in torch.atleast_2d(tokens)]


def tokenizer_of(config: dict) -> Tokenizer | None:
    """The tokenizer of a text-conditioned checkpoint (its config records the vocabulary), else None."""
    text = config.get("text")
    return Tokenizer(text["vocab"], text["max_tokens"]) if text else None


def class_prompts(labels, dataset: str, tokenizer: Tokenizer) -> torch.Tensor:
    """Tokens of each label's canonical prompt ("a seven"): how a text model is asked for a class."""
    return tokenizer.encode([class_prompt(int(c), dataset) for c in torch.as_tensor(labels).reshape(-1)])


def prompt_class(prompt: str, dataset: str) -> int:
    """The class a prompt names, or -1 when it names none (or more than one)."""
    words = set(prompt.lower().replace(",", " ").split())
    named = {c for c, names in enumerate(class_words(dataset)) if words & names}
    return named.pop() if len(named) == 1 else -1


def class_prompt(label: int, dataset: str) -> str:
    """The canonical prompt of a class: "a seven", "an ankle boot", "trousers"."""
    return with_article(WORDS[dataset].classes[label][0])


def with_article(phrase: str) -> str:
    """ "a seven", "an eight", "an 8", "an ankle boot"; plurals ("trousers") take none."""
    if phrase.split()[-1] in PLURAL:
        return phrase
    return ("an " if phrase[0] in "aeiu8" else "a ") + phrase  # "a one": its o sounds like w


# --------------------------------------------------------------------------- prompts from the data


def attribute_scores(images: torch.Tensor, dataset: str) -> dict[str, torch.Tensor]:
    """Per attribute, the measure its words come from, one number per image (images in [-1, 1], read
    clipped to it): MNIST's ink share (pixels above half) and slant; Fashion-MNIST's mean brightness."""
    x = ((images.float() + 1) / 2).clamp(0, 1)
    if dataset == "mnist":
        return {"ink": (x > 0.5).float().flatten(1).mean(1), "slant": slant(x)}
    if dataset == "fashion_mnist":
        on = (x > 0.05).float()
        return {"brightness": (x * on).flatten(1).sum(1) / on.flatten(1).sum(1).clamp(min=1)}
    raise ValueError(f"no attributes for {dataset!r}.")


def thirds(score: torch.Tensor) -> tuple[float, float]:
    """The boundaries of the bottom and top thirds of these scores (the low and the high word)."""
    lo, hi = torch.quantile(score.float(), torch.tensor([1 / 3, 2 / 3]))
    return float(lo), float(hi)


def image_attributes(images: torch.Tensor, labels: torch.Tensor, dataset: str) -> dict[str, torch.Tensor]:
    """Per attribute, an int tensor (N,): 0 = low word, 1 = neither, 2 = high word (terciles within
    each class, so a thick one is thick for a one)."""
    out = {}
    for name, score in attribute_scores(images, dataset).items():
        level = torch.ones(len(score), dtype=torch.long)
        for c in labels.unique():
            mask = labels == c
            lo, hi = thirds(score[mask])
            level[mask & (score <= lo)] = 0
            level[mask & (score >= hi)] = 2
        out[name] = level
    return out


def slant(x: torch.Tensor) -> torch.Tensor:
    """mu11 / mu02 of each image's ink (x in [0, 1], (N, 1, H, W)): how far x moves per row of y,
    the deskewing measure; |slant| large = slanted."""
    n, _, h, w = x.shape
    m = x[:, 0]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=m.dtype), torch.arange(w, dtype=m.dtype), indexing="ij")
    total = m.sum((1, 2)).clamp(min=1e-6)
    cy, cx = (m * ys).sum((1, 2)) / total, (m * xs).sum((1, 2)) / total
    dy, dx = ys - cy[:, None, None], xs - cx[:, None, None]
    return ((m * dx * dy).sum((1, 2)) / (m * dy * dy).sum((1, 2)).clamp(min=1e-6)).abs()


def random_prompts(labels: torch.Tensor, attributes: dict[str, torch.Tensor], dataset: str,
                   generator: torch.Generator | None = None) -> list[str]:
    """One prompt per image, from a few templates: "7", "seven", "a seven", "digit 7" (MNIST only), "a
    thick seven", "a thin slanted 7"; 1 in 10 (when the image has an attribute) names no class: "a thick digit".
    Each attribute the image has is mentioned half the time."""
    def pick(options):
        return options[int(torch.randint(len(options), (), generator=generator))]

    def coin(p):
        return bool(torch.rand((), generator=generator) < p)

    out, own = [], WORDS[dataset]
    for i, c in enumerate(labels.tolist()):
        adjectives = [pair[attributes[name][i] // 2] for name, pair in own.attributes.items()
                      if attributes[name][i] != 1 and coin(0.5)]
        name = pick(own.classes[c])
        if adjectives and coin(0.1):
            out.append(with_article(" ".join([*adjectives, pick(own.nouns)])))  # attributes only
        elif adjectives:
            out.append(with_article(" ".join([*adjectives, name])))
        else:
            forms = [name, with_article(name)] + ([f"{pick(own.nouns)} {name}"] if dataset == "mnist" else [])
            out.append(pick(forms))
    return out


# --------------------------------------------------------------------------- the text encoder


class TransformerBlock(nn.Module):
    """Pre-norm transformer encoder block (Vaswani et al. 2017, arXiv 1706.03762; norm first as in
    GPT-2): x + SelfAttention(LN(x)), then x + MLP(LN(x)). Padding tokens are masked out as keys."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"text dim {dim} must be divisible by heads {heads}.")
        self.heads = heads
        self.ln1, self.qkv, self.proj = nn.LayerNorm(dim), nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        h = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])  # softmax(q k^T / sqrt(d)) v
        x = x + self.proj(h.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.ln2(x))


class TextEncoder(nn.Module):
    """tokens (B, L) -> context (B, L, dim): token + position embeddings, `depth` transformer blocks,
    a final LayerNorm (the "tau_theta" of latent diffusion, sec. 3.3)."""

    def __init__(self, vocab_size: int, dim: int = 64, depth: int = 2, heads: int = 4, max_tokens: int = MAX_TOKENS):
        super().__init__()
        self.vocab_size, self.max_tokens = vocab_size, max_tokens
        self.token = nn.Embedding(vocab_size, dim)
        self.position = nn.Parameter(torch.randn(max_tokens, dim) * 0.02)
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads) for _ in range(depth))
        self.ln = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        keep = tokens != PAD
        x = self.token(tokens) + self.position[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x, keep)
        return self.ln(x)


def check_tokens(model: nn.Module, tokens, batch: int, device) -> torch.Tensor:
    """Validate a (B, L) token tensor for a text-conditioned model; None means the empty prompt."""
    enc = model.text_encoder
    if tokens is None:
        return null_tokens(torch.zeros(batch, enc.max_tokens, dtype=torch.long, device=device))
    tokens = torch.as_tensor(tokens, device=device)
    if tokens.ndim == 2 and tokens.shape[0] == 1:
        tokens = tokens.expand(batch, -1)  # one prompt for the whole batch
    if tokens.ndim != 2 or tokens.shape[0] != batch or tokens.shape[1] > enc.max_tokens:
        raise ValueError(f"this model is text-conditioned: y must be prompt tokens of shape ({batch}, <= "
                         f"{enc.max_tokens}) from Tokenizer.encode, got {tuple(tokens.shape)}.")
    if tokens.is_floating_point() or tokens.min() < 0 or tokens.max() >= enc.vocab_size:
        raise ValueError(f"token ids must be integers in 0..{enc.vocab_size - 1}; use Tokenizer.encode.")
    if not bool((tokens[:, 0] == BOS).all()):
        raise ValueError("every token row starts with BOS (id 1); use Tokenizer.encode.")
    return tokens.long()
