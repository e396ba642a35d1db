"""Notebook 01 (CLIP): the contrastive loss, the zero-shot classifier, retrieval.

References: ``clip_loss``, ``zero_shot_classify`` and ``retrieve`` of
:mod:`course_lib.models.clip`, the functions the course's CLIP trains and is measured with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from course_lib.checks import Case, Exercise, Mistake, Tolerance
from course_lib.models.clip import clip_loss as _clip_loss
from course_lib.models.clip import retrieve as _retrieve
from course_lib.models.clip import zero_shot_classify as _zero_shot_classify

# ---------------------------------------------------------------- references


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: float) -> torch.Tensor:
    """The symmetric InfoNCE loss of N matching pairs; a 0-d tensor.

    ``logits = logit_scale * image_emb @ text_emb.T`` ([N, N]); the mean of the cross-entropy
    of the rows and of the columns against the diagonal. Embeddings [N, E], unit length.
    """
    return _clip_loss(image_emb, text_emb, logit_scale)


def zero_shot_classify(image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    """Class indices [N] int64: each image's class of highest cosine similarity, where each
    class's embedding is the normalised mean of its T normalised template embeddings.

    ``image_emb`` [N, E]; ``text_emb`` [C, T, E].
    """
    return _zero_shot_classify(image_emb, text_emb)


def retrieve(query_emb: torch.Tensor, candidate_emb: torch.Tensor, k: int) -> torch.Tensor:
    """Indices [Q, k] int64 of each query's ``k`` candidates of highest cosine similarity,
    most similar first. ``query_emb`` [Q, E], ``candidate_emb`` [K, E]."""
    return _retrieve(query_emb, candidate_emb, k)


# ---------------------------------------------------------------- usual mistakes


def _loss_one_direction(image_emb, text_emb, logit_scale):
    logits = logit_scale * image_emb @ text_emb.T
    return F.cross_entropy(logits, torch.arange(len(logits)))


def _loss_no_scale(image_emb, text_emb, logit_scale):
    return _clip_loss(image_emb, text_emb, 1.0)


def _loss_divided_by_scale(image_emb, text_emb, logit_scale):
    return _clip_loss(image_emb, text_emb, 1.0 / logit_scale)


def _loss_summed_directions(image_emb, text_emb, logit_scale):
    return 2 * _clip_loss(image_emb, text_emb, logit_scale)


def _zs_first_template(image_emb, text_emb):
    return _zero_shot_classify(image_emb, text_emb[:, 0])


def _zs_mean_not_normalised(image_emb, text_emb):
    return (image_emb @ text_emb.mean(1).T).argmax(1)


def _zs_max_over_templates(image_emb, text_emb):
    sims = torch.einsum("ne,cte->nct", image_emb, F.normalize(text_emb, dim=-1))
    return sims.amax(2).argmax(1)


def _zs_templates_not_normalised(image_emb, text_emb):
    return _zero_shot_classify(image_emb, F.normalize(text_emb.mean(1), dim=-1))


def _retrieve_dot_product(query_emb, candidate_emb, k):
    return (query_emb @ candidate_emb.T).topk(k, dim=1).indices


def _retrieve_least_similar(query_emb, candidate_emb, k):
    return _retrieve(query_emb, -candidate_emb, k)


def _retrieve_similarities(query_emb, candidate_emb, k):
    sims = F.normalize(query_emb, dim=-1) @ F.normalize(candidate_emb, dim=-1).T
    return sims.topk(k, dim=1).values


# ---------------------------------------------------------------- cases


def _unit(gen: torch.Generator, *shape: int, dtype=torch.float32) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, generator=gen, dtype=torch.float64), dim=-1).to(dtype)


def _loss_case(gen: torch.Generator, n: int, e: int, scale: float, dtype=torch.float32) -> dict:
    image = _unit(gen, n, e, dtype=dtype)
    text = F.normalize(image + 0.8 * _unit(gen, n, e, dtype=dtype), dim=-1)  # related pairs
    return {"image_emb": image, "text_emb": text, "logit_scale": scale}


def _zs_case(gen: torch.Generator, n: int, c: int, t: int, e: int) -> dict:
    centres = _unit(gen, c, 1, e)
    # templates scattered around each class centre, with lengths far from 1
    text = (centres + 0.9 * _unit(gen, c, t, e)) * torch.empty(c, t, 1).uniform_(
        0.2, 3.0, generator=gen
    )
    labels = torch.randint(c, (n,), generator=gen)
    image = F.normalize(centres[labels, 0] + 0.9 * _unit(gen, n, e), dim=-1)
    return {"image_emb": image, "text_emb": text}


def _retrieve_case(gen: torch.Generator, q: int, k_cand: int, e: int, k: int) -> dict:
    candidates = _unit(gen, k_cand, e) * torch.empty(k_cand, 1).uniform_(0.2, 3.0, generator=gen)
    return {"query_emb": _unit(gen, q, e), "candidate_emb": candidates, "k": k}


def _public(seed: int, make, *args) -> dict:
    return make(torch.Generator().manual_seed(seed), *args)


def _hidden_loss(gen: torch.Generator) -> list[dict]:
    return [
        _loss_case(gen, 16, 32, 14.3),
        _loss_case(gen, 5, 8, 100.0),
        _loss_case(gen, 64, 16, 1.0),
        _loss_case(gen, 9, 12, 7.5, torch.float64),
    ]


def _hidden_zs(gen: torch.Generator) -> list[dict]:
    return [_zs_case(gen, 40, 4, 5, 16), _zs_case(gen, 25, 7, 3, 8), _zs_case(gen, 60, 3, 8, 32)]


def _hidden_retrieve(gen: torch.Generator) -> list[dict]:
    return [
        _retrieve_case(gen, 7, 30, 16, 3),
        _retrieve_case(gen, 20, 100, 8, 1),
        _retrieve_case(gen, 3, 12, 32, 5),
    ]


# ---------------------------------------------------------------- the exercises

EXERCISES = [
    Exercise(
        name="clip_loss",
        reference=clip_loss,
        points=2,
        cases=[
            Case(
                "two orthogonal pairs, logit_scale 1",
                {
                    "image_emb": torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
                    "text_emb": torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
                    "logit_scale": 1.0,
                },
            ),
            Case("8 related pairs, logit_scale 10", _public(1, _loss_case, 8, 16, 10.0)),
            Case(
                "5 pairs in float64, logit_scale 50",
                _public(2, _loss_case, 5, 4, 50.0, torch.float64),
            ),
        ],
        hidden=_hidden_loss,
        tolerance=Tolerance(rtol=1e-5, atol=1e-6),
        mistakes=[
            Mistake(
                "one direction only",
                _loss_one_direction,
                "the loss is symmetric: average the cross-entropy of the rows (image -> text) "
                "and of the columns (text -> image, `logits.T`).",
            ),
            Mistake(
                "no temperature",
                _loss_no_scale,
                "multiply the cosine similarities by `logit_scale` before the cross-entropy: "
                "cosines lie in [-1, 1], too flat for a softmax to pick the right pair.",
            ),
            Mistake(
                "divided by the scale",
                _loss_divided_by_scale,
                "`logit_scale` is the inverse temperature 1 / τ: multiply by it.",
            ),
            Mistake(
                "directions summed",
                _loss_summed_directions,
                "average the two directions (divide their sum by 2), so the loss is about "
                "log N at random, not 2 log N.",
            ),
        ],
    ),
    Exercise(
        name="zero_shot_classify",
        reference=zero_shot_classify,
        points=2,
        cases=[
            Case(
                "two classes of one template, three images",
                {
                    "image_emb": torch.tensor([[0.9, 0.1], [0.1, 0.9], [-0.6, 0.8]]),
                    "text_emb": torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]]),
                },
            ),
            Case("4 classes, 5 templates of uneven length", _public(3, _zs_case, 30, 4, 5, 16)),
            Case("6 classes, 3 templates", _public(4, _zs_case, 50, 6, 3, 8)),
        ],
        hidden=_hidden_zs,
        tolerance=Tolerance(rtol=0, atol=0),
        mistakes=[
            Mistake(
                "first template only",
                _zs_first_template,
                "ensemble every template: average a class's T embeddings (dim 1 of text_emb).",
            ),
            Mistake(
                "raw mean",
                _zs_mean_not_normalised,
                "normalise each template embedding to unit length, average, then normalise the "
                "mean again: the comparison is by cosine, not by dot product.",
            ),
            Mistake(
                "templates not normalised",
                _zs_templates_not_normalised,
                "normalise each template embedding before averaging, or a long one outvotes "
                "the others.",
            ),
            Mistake(
                "best template instead of the mean",
                _zs_max_over_templates,
                "template ensembling averages the templates' embeddings into one per class, "
                "then compares; it does not take each class's best template.",
            ),
        ],
    ),
    Exercise(
        name="retrieve",
        reference=retrieve,
        points=1,
        cases=[
            Case(
                "one query, four candidates, top 3",
                {
                    "query_emb": torch.tensor([[1.0, 0.1]]),
                    "candidate_emb": torch.tensor(
                        [[2.0, 0.0], [0.8, 0.6], [0.0, 3.0], [-1.0, 0.0]]
                    ),
                    "k": 3,
                },
            ),
            Case(
                "5 queries, 20 candidates of uneven length, top 2",
                _public(5, _retrieve_case, 5, 20, 8, 2),
            ),
        ],
        hidden=_hidden_retrieve,
        tolerance=Tolerance(rtol=0, atol=0),
        mistakes=[
            Mistake(
                "dot product",
                _retrieve_dot_product,
                "rank by cosine similarity: normalise the candidates (and queries), or a long "
                "candidate wins for every query.",
            ),
            Mistake(
                "least similar first",
                _retrieve_least_similar,
                "the most similar candidates come first: `topk` (largest), not the smallest.",
            ),
            Mistake(
                "similarities instead of indices",
                _retrieve_similarities,
                "return the candidates' indices (`topk(...).indices`, int64), not their "
                "similarities.",
            ),
        ],
    ),
]
