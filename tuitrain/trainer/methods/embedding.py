"""training.method = "embedding": textual inversion, new token vectors and nothing else.

The placeholder token becomes N tokens in every tokenizer, named as diffusers'
load_textual_inversion names the vectors of a multi-vector embedding (`tok`,
`tok_1` .. `tok_{N-1}`), and captions are expanded with the pipeline's own
`maybe_convert_prompt`, so a caption tokenises in training exactly as the prompt
will at generation. Each text encoder's token embedding grows by N rows,
initialised from the embeddings of embedding.initial_text.

What trains is one small fp32 parameter per text encoder holding just those N rows;
a forward hook on the token embedding puts them in place of the rows' lookups. So
the optimizer (its state, weight decay, gradient clipping, EMA) only ever sees the
new vectors and every other row of the vocabulary stays bit-identical by
construction, instead of training the whole [vocab, dim] matrix and restoring
most of it after every step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from tuitrain.config import Config
from tuitrain.trainer.export.embedding import embedding_keys, embedding_metadata, save_embedding
from tuitrain.trainer.export.metadata import base_precision_metadata
from tuitrain.trainer.families.base import FamilyAdapter, ModelParts
from tuitrain.trainer.errors import TrainingError
from tuitrain.trainer.methods.base import SaveRequest, TrainingMethod

if TYPE_CHECKING:
    from tuitrain.trainer.data import TrainingData

TOKEN_OPTION = "embedding.token"


def vector_tokens(token: str, vectors: int) -> list[str]:
    """The tokenizer words of an N-vector embedding, as diffusers' loader names them."""
    return [token] + [f"{token}_{i}" for i in range(1, vectors)]


@dataclass
class NewRows:
    """The trained vectors of one text encoder and the hook that puts them into its forward pass."""

    key: str  # the export name: emb_params, clip_l or clip_g
    embedding: nn.Embedding
    token_ids: list[int]
    rows: nn.Parameter  # [N, dim], fp32, the only thing that trains
    slots: torch.Tensor = field(init=False)  # vocab id -> row index, -1 for every other id
    handle: Any = field(init=False, default=None)

    def __post_init__(self) -> None:
        weight = self.embedding.weight
        self.slots = torch.full((weight.shape[0],), -1, dtype=torch.long, device=weight.device)
        self.slots[torch.tensor(self.token_ids, device=weight.device)] = torch.arange(len(self.token_ids),
                                                                                       device=weight.device)
        self.handle = self.embedding.register_forward_hook(self._overlay)

    def _overlay(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        """The lookup with the new tokens' rows taken from `rows` (so gradients reach only them)."""
        slot = self.slots[args[0]]
        is_new = slot >= 0
        picked = self.rows[slot.clamp(min=0)].to(output.dtype)
        return torch.where(is_new.unsqueeze(-1), picked, output)

    @torch.no_grad()
    def sync(self) -> None:
        """Copy the trained rows into the embedding matrix, so the model's weights say what it computes."""
        self.embedding.weight[self.token_ids] = self.rows.to(self.embedding.weight.dtype)


def _initial_rows(embedding: nn.Embedding, tokenizer: Any, initial_text: str, vectors: int) -> torch.Tensor:
    """Embeddings of initial_text's tokens, repeated or cut to `vectors` rows (read before any token is added)."""
    ids = tokenizer(initial_text, add_special_tokens=False).input_ids
    if not ids:
        raise TrainingError(f"embedding.initial_text: {initial_text!r} has no tokens; use a word such as '*'")
    ids = (ids * -(-vectors // len(ids)))[:vectors]
    return embedding.weight.detach()[ids].float().clone()


def add_placeholder(encoder: nn.Module, tokenizer: Any, key: str, token: str, vectors: int,
                    initial_text: str) -> NewRows:
    """Add the N tokens to `tokenizer`, grow `encoder`'s embedding and make the new rows trainable.

    A token the tokenizer already knows would share its row with a real word (and
    diffusers refuses to load it), so that is an error naming embedding.token.
    """
    names = vector_tokens(token, vectors)
    vocab = tokenizer.get_vocab()
    known = [name for name in names if name in vocab]
    if known:
        raise TrainingError(
            f"{TOKEN_OPTION}: {known[0]!r} is already in the tokenizer's vocabulary; choose a made-up word "
            f"such as '<{token.strip('<>')}-emb>'"
        )
    initial = _initial_rows(encoder.get_input_embeddings(), tokenizer, initial_text, vectors)
    before = len(tokenizer)
    added = tokenizer.add_tokens(names)
    ids = tokenizer.convert_tokens_to_ids(names)
    if added != vectors or len(set(ids)) != vectors or min(ids) < before:
        raise TrainingError(f"{TOKEN_OPTION}: the tokenizer did not take {token!r} as {vectors} new tokens")
    if tokenizer.tokenize(token) != [token]:
        # CLIP lowercases text before it looks for added tokens: '<MyTok>' would never match.
        raise TrainingError(
            f"{TOKEN_OPTION}: the tokenizer does not keep {token!r} as one word (it reads "
            f"{' '.join(tokenizer.tokenize(token))!r}); use lower case, e.g. {token.lower()!r}"
        )
    rows_needed = max(int(encoder.get_input_embeddings().weight.shape[0]), max(ids) + 1)
    encoder.resize_token_embeddings(rows_needed, mean_resizing=False)
    embedding = encoder.get_input_embeddings()
    rows = nn.Parameter(initial.to(embedding.weight.device), requires_grad=True)
    new = NewRows(key=key, embedding=embedding, token_ids=list(ids), rows=rows)
    new.sync()
    return new


class EmbeddingMethod(TrainingMethod):
    """Textual inversion on every text encoder of the family; saved as one A1111/ComfyUI embedding file."""

    trains_text_encoders = True

    def __init__(self, config: Config, parts: ModelParts, adapter: FamilyAdapter) -> None:
        super().__init__(config, parts, adapter)
        family = config.model.family
        try:
            keys = embedding_keys(family)
        except ValueError:
            raise TrainingError(f"training.method: 'embedding' is not available for model.family {family!r}") from None
        if len(keys) != len(parts.text_encoders):
            raise TrainingError(f"model.family {family!r}: expected {len(keys)} text encoders, "
                                f"the model has {len(parts.text_encoders)}")
        cfg = config.embedding
        self.token = cfg.token
        self.vectors = cfg.vectors
        self.new_rows: list[NewRows] = []
        for key, encoder, tokenizer in zip(keys, parts.text_encoders, parts.tokenizers):
            # fp32: the vectors move by small steps that a bf16/fp16 forward would round away.
            encoder.requires_grad_(False)
            encoder.to(dtype=torch.float32)
            self.new_rows.append(add_placeholder(encoder, tokenizer, key, cfg.token, cfg.vectors, cfg.initial_text))

    @classmethod
    def full_precision_components(cls, config: Config) -> frozenset[str]:
        """The text encoders run in fp32 here (see __init__): leave their base weights unrounded."""
        return frozenset({"text_encoders"})

    # -- captions ---------------------------------------------------------------------------
    def check_data(self, data: TrainingData) -> None:
        captions: list[str] = []
        for scan in data.scans:
            if scan.repeats == 0:
                continue
            captions += scan.prompts if scan.spec.caption == "prompt-file" else [i.caption or "" for i in scan.images]
        self.check_captions(captions)

    def check_captions(self, captions: Iterable[str]) -> None:
        """Fail at start when no caption holds the token: the vectors would get no gradient at all."""
        tokenizer = self.parts.tokenizers[0]
        with_token = [c for c in captions if self.token in c and self.token in tokenizer.tokenize(c)]
        if with_token:
            # The expanded caption must fit the text encoder's window, or the last vectors are cut off
            # and never learn (while still being saved).
            room = tokenizer.model_max_length
            longest = max(with_token, key=lambda c: len(tokenizer(self.prepare_caption(c)).input_ids))
            length = len(tokenizer(self.prepare_caption(longest)).input_ids)
            if length > room:
                raise TrainingError(
                    f"embedding.vectors: with {self.vectors} vectors the caption {longest[:60]!r} is {length} "
                    f"tokens, over the text encoder's {room}; the vectors past the end would never train. "
                    "Use fewer vectors or shorter captions."
                )
            return
        raise TrainingError(
            f"{TOKEN_OPTION}: no training caption contains {self.token!r}, so the embedding cannot learn; "
            f"write it into the captions (e.g. 'photo of {self.token}, ...' in the caption files, or "
            f"caption = 'instance' with instance_prompt = 'photo of {self.token}')"
        )

    def prepare_caption(self, caption: str) -> str:
        """`tok` -> `tok tok_1 .. tok_{N-1}`, by diffusers' own maybe_convert_prompt (what inference runs)."""
        return self.parts.pipeline.maybe_convert_prompt(caption, self.parts.tokenizers[0])

    # -- training ---------------------------------------------------------------------------
    def trainable_parameters(self) -> list[nn.Parameter]:
        return [new.rows for new in self.new_rows]

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        rate = self.config.embedding.learning_rate or lr
        return [{"params": self.trainable_parameters(), "lr": rate}]

    def after_optimizer_step(self) -> None:
        for new in self.new_rows:
            new.sync()

    # -- backups ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        return {new.key: new.rows.detach() for new in self.new_rows}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        expected = {new.key: tuple(new.rows.shape) for new in self.new_rows}
        given = {key: tuple(value.shape) for key, value in state.items()}
        if given != expected:
            raise ValueError(f"saved embedding does not fit this run: it holds {given}, the run trains {expected} "
                             "(embedding.vectors or the model changed since the backup)")
        with torch.no_grad():
            for new in self.new_rows:
                new.rows.copy_(state[new.key].to(new.rows.device, new.rows.dtype))
                new.sync()

    # -- output -----------------------------------------------------------------------------
    def save(self, request: SaveRequest) -> Path:
        cfg = self.config
        metadata = embedding_metadata(
            family=cfg.model.family, token=self.token, vectors=self.vectors, output_name=request.stem,
            base_model=cfg.model.base, step=request.step, epoch=request.epoch,
            training_started_at=request.started_at, resolution=cfg.data.resolution,
            v_prediction=self.parts.prediction_type == "v_prediction", initial_text=cfg.embedding.initial_text,
        )
        metadata.update(base_precision_metadata(cfg))  # the base precision it was trained against
        return save_embedding(request.folder / f"{request.stem}.safetensors", self.state_dict(),
                              family=cfg.model.family, save_dtype=cfg.saving.dtype, metadata=metadata)
