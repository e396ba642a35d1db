"""The tokenizer: fixed-length ids with a mask, round trips, and unknown words reported."""

import numpy as np
import pytest
import torch

from course_lib.data import shapes
from course_lib.data.captions import tokenize
from course_lib.data.tokenizer import Tokenizer, UnknownWordsWarning

torch.set_num_threads(1)


def test_special_tokens_come_first():
    tok = Tokenizer(["red", "circle"])
    assert tok.vocab[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"] and len(tok) == 6


def test_encode_gives_fixed_length_ids_and_a_mask():
    tok = Tokenizer.default(max_len=12)
    ids, mask = tok.encode(["a red circle", "a small blue square at the top left"])
    assert ids.shape == (2, 12) and ids.dtype == torch.int64 and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == [5, 10]  # words plus <bos> and <eos>
    assert ids[0, 0].item() == tok.bos_id and ids[0, 4].item() == tok.eos_id
    assert (ids[0, 5:] == tok.pad_id).all()


def test_a_single_string_is_a_batch_of_one():
    tok = Tokenizer.default()
    assert torch.equal(tok.encode("a red circle").ids, tok.encode(["a red circle"]).ids)


def test_decode_inverts_encode_for_captions():
    tok = Tokenizer.default()
    rng = np.random.default_rng(0)
    texts = [shapes.caption(s, rng) for s in shapes.sample_scenes(500, seed=0, max_objects=3)]
    assert tok.decode(tok.encode(texts).ids) == texts


def test_every_generated_caption_fits_the_default_length():
    tok = Tokenizer.default()
    rng = np.random.default_rng(1)
    scenes = shapes.sample_scenes(2000, seed=1, max_objects=3, min_objects=3, split="all")
    longest = max(len(tokenize(shapes.caption(s, rng, complete=True))) for s in scenes)
    assert longest + 2 <= tok.max_len  # <bos> and <eos>


def test_encoding_is_case_insensitive_and_splits_punctuation():
    tok = Tokenizer.default()
    assert tok.decode(tok.encode("Top-Left: A Little Crimson Disc").ids) == [
        "top-left: a little crimson disc"
    ]


def test_unknown_words_become_unk_and_are_listed_in_a_warning():
    tok = Tokenizer.default()
    with pytest.warns(UnknownWordsWarning, match="'zebra', 'hexagon'"):
        ids, _ = tok.encode(["a red zebra", "a hexagon"])
    assert ids[0, 3].item() == tok.unk_id and ids[1, 2].item() == tok.unk_id
    assert tok.decode(ids)[0] == "a red <unk>"


def test_known_words_raise_no_warning(recwarn):
    Tokenizer.default().encode(["a big violet plus sign beneath a tiny dot"])
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_too_long_captions_are_cut_with_a_warning():
    tok = Tokenizer.default(max_len=5)
    with pytest.warns(UserWarning, match="cut"):
        ids, mask = tok.encode(["a small red circle at the top"])
    assert mask.sum().item() == 5 and ids[0, -1].item() == tok.eos_id


def test_round_trip_through_json_keeps_the_vocabulary(tmp_path):
    tok = Tokenizer.from_captions(["a red circle", "a blue square"], max_len=9)
    assert Tokenizer.from_json(tok.to_json()) == tok
    tok.save(tmp_path / "vocab.json")
    loaded = Tokenizer.load(tmp_path / "vocab.json")
    assert loaded.vocab == tok.vocab and loaded.max_len == 9


def test_from_captions_collects_their_words():
    tok = Tokenizer.from_captions(["a red circle", "a blue circle"])
    assert tok.vocab[4:] == ["a", "red", "circle", "blue"]


def test_a_caption_that_is_not_a_string_is_a_type_error():
    with pytest.raises(TypeError, match=r"texts\[1\] is a int"):
        Tokenizer.default().encode(["a red circle", 7])
