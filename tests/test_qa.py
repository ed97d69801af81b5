"""Extractive QA with a reasoning head (issue #15): span mapping on hand-made cases with the real MiniLM tokenizer,
the heads' shapes and loss on a tiny random BERT, the SQuAD metric and weak labels on hand cases, the saved reader
in transformers, document ingestion (Markdown, a PDF written here and parsed by pypdf) and ``ask`` end to end with
the real teacher as retriever and an untrained reader (the pipeline, not reader quality, is under test)."""

from __future__ import annotations

import json
import re

import pytest
import torch
from conftest import tiny_bert_config

from st_bertapprox.qa import REASONING_TYPES, BertForQuestionAnsweringWithReasoning, Reader, weak_reasoning_label
from st_bertapprox.qa.documents import document_passages, markdown_to_text, read_document, split_passages
from st_bertapprox.qa.features import answer_token_span, best_spans, prepare_features
from st_bertapprox.qa.metric import f1_score, normalize_answer, squad_scores
from st_bertapprox.qa.model import span_loss
from st_bertapprox.qa.train import split_articles, with_negatives

CONTEXT = (
    "Super Bowl 50 was played on February 7, 2016, at Levi's Stadium in Santa Clara. The Denver Broncos defeated "
    "the Carolina Panthers 24 to 10 to earn their third title. Von Miller was named most valuable player."
)


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


def answer(text: str, context: str = CONTEXT, occurrence: int = 0) -> dict:
    start = -1
    for _ in range(occurrence + 1):
        start = context.index(text, start + 1)
    return {"text": text, "answer_start": start}


def decoded(tokenizer, features, row: int) -> str:
    ids = features.encodings["input_ids"][row]
    return tokenizer.decode(ids[features.start_positions[row] : features.end_positions[row] + 1])


# --- span mapping (hand-made cases, real tokenizer) ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Super Bowl 50", "super bowl 50"),  # the first characters of the context
        ("most valuable player.", "most valuable player."),  # the last ones
        ("Denver Broncos", "denver broncos"),
        ("24 to 10", "24 to 10"),
    ],
)
def test_span_mapping_start_end_and_middle(tokenizer, text, expected):
    f = prepare_features(tokenizer, ["Who won?"], [CONTEXT], [answer(text)])
    assert len(f) == 1 and decoded(tokenizer, f, 0) == expected
    offsets = f.offsets[0]
    a, b = offsets[f.start_positions[0]][0], offsets[f.end_positions[0]][1]
    assert CONTEXT[a:b] == text  # the character span maps back exactly
    if text == "Super Bowl 50":
        assert offsets[f.start_positions[0] - 1] is None  # the first context piece: [SEP] before it
    if text.endswith("player."):
        assert f.end_positions[0] == len(offsets) - 2  # the last context piece: [SEP] after it


def test_span_mapping_absent_answer_points_at_cls(tokenizer):
    f = prepare_features(
        tokenizer, ["Who won?", "Who won?"], [CONTEXT, CONTEXT], [None, {"text": "", "answer_start": 0}]
    )
    assert f.start_positions == [0, 0] and f.end_positions == [0, 0]


def test_long_context_windows_and_an_answer_cut_by_truncation(tokenizer):
    filler = " ".join(f"Sentence number {i} says nothing at all." for i in range(12))
    context = f"{filler} The Denver Broncos won the game. {filler}"
    ans = answer("Denver Broncos", context)
    f = prepare_features(tokenizer, ["Who won?"], [context], [ans], max_length=48, doc_stride=16, max_query_length=8)
    assert len(f) > 4 and set(f.example_index) == {0}
    holding = [r for r in range(len(f)) if f.start_positions[r] != 0]
    assert holding and all(decoded(tokenizer, f, r) == "denver broncos" for r in holding)
    for r in range(len(f)):
        context_chars = [o for o in f.offsets[r] if o is not None]
        covered = context_chars[0][0] <= ans["answer_start"] and context_chars[-1][1] >= ans["answer_start"] + 14
        assert (r in holding) == covered  # windows without the whole answer point at [CLS]
    # a window that ends inside the answer: the answer is cut by truncation, so the label is [CLS]
    cut = [r for r in range(len(f)) if any(o is not None and ans["answer_start"] < o[1] < ans["answer_start"] + 14
                                           for o in f.offsets[r][-3:])]  # fmt: skip
    assert all(f.start_positions[r] == f.end_positions[r] == 0 for r in cut)
    for r in range(len(f) - 1):  # consecutive windows share doc_stride pieces of context
        a = [o for o in f.offsets[r] if o is not None]
        b = [o for o in f.offsets[r + 1] if o is not None]
        assert a[-16:] == b[:16]


def test_answer_token_span_on_hand_made_offsets():
    offsets = [None, None, None, (0, 5), (6, 8), (9, 11), (11, 14), None]  # [CLS] q [SEP] "Paris is 1900s" [SEP]
    assert answer_token_span(offsets, 0, "Paris") == (3, 3)  # at the start
    assert answer_token_span(offsets, 9, "1900s") == (5, 6)  # at the end, two pieces
    assert answer_token_span(offsets, 6, "is 1") == (4, 5)  # ends inside a piece: the whole piece is kept
    assert answer_token_span(offsets, 11, "00s and more") == (0, 0)  # runs past the window: cut by truncation
    assert answer_token_span(offsets, None, None) == (0, 0)  # absent
    assert answer_token_span([None, None, None], 0, "x") == (0, 0)  # no context in the window


def test_long_questions_are_cut_and_stride_is_checked(tokenizer):
    question = "What " + "very " * 100 + "long question?"
    kw = dict(max_length=64, doc_stride=8, max_query_length=16)
    f = prepare_features(tokenizer, [question], [CONTEXT], [answer("Von Miller")], **kw)
    assert all(w[0] == 0 and w.count(0) == 16 + 2 for w in f.encodings["token_type_ids"])  # [CLS] 16 pieces [SEP]
    assert "von miller" in [decoded(tokenizer, f, r) for r in range(len(f))]
    with pytest.raises(ValueError, match="doc_stride"):
        prepare_features(tokenizer, ["q"], [CONTEXT], **{**kw, "doc_stride": 45})


def test_best_span_decodes_characters_and_skips_the_question(tokenizer):
    import numpy as np

    f = prepare_features(tokenizer, ["Who won?"], [CONTEXT], [answer("Denver Broncos")])
    T = len(f.offsets[0])
    start, end = np.zeros((1, T)), np.zeros((1, T))
    start[0, 1] = end[0, 1] = 50.0  # a question piece: never an answer
    start[0, f.start_positions[0]], end[0, f.end_positions[0]] = 5.0, 4.0
    span = best_spans(f, [CONTEXT], start, end)[0]
    assert span.text == "Denver Broncos" and span.score == 9.0 and span.null_score == 0.0
    end[0, f.start_positions[0] - 1] = 20.0  # an end before the start is invalid
    assert best_spans(f, [CONTEXT], start, end)[0].text == "Denver Broncos"


# --- model: heads, loss, saving ------------------------------------------------------------------------------------


def tiny_reader(**kw) -> BertForQuestionAnsweringWithReasoning:
    torch.manual_seed(0)
    return BertForQuestionAnsweringWithReasoning(tiny_bert_config(), **kw).eval()


def test_heads_shapes_and_combined_loss():
    model = tiny_reader(reasoning_loss_weight=0.5)
    B, T = 3, 11
    ids = torch.randint(1, 99, (B, T))
    mask = torch.ones(B, T, dtype=torch.long)
    mask[0, 7:] = 0
    out = model(ids, mask)
    assert out.start_logits.shape == out.end_logits.shape == (B, T)
    assert out.reasoning_logits.shape == (B, len(REASONING_TYPES)) and out.loss is None
    starts, ends, labels = torch.tensor([1, 0, 4]), torch.tensor([2, 0, 9]), torch.tensor([0, 2, -100])
    full = model(ids, mask, start_positions=starts, end_positions=ends, reasoning_labels=labels)
    ce = torch.nn.functional.cross_entropy
    span = (ce(out.start_logits, starts) + ce(out.end_logits, ends)) / 2
    reasoning = ce(out.reasoning_logits[:2], labels[:2])  # -100 ignored
    assert torch.allclose(full.loss, span + 0.5 * reasoning, atol=1e-6)
    assert torch.allclose(model(ids, mask, start_positions=starts, end_positions=ends).loss, span, atol=1e-6)
    # positions beyond the input are ignored, as in HF
    outside = span_loss(out.start_logits, out.end_logits, torch.tensor([1, 0, 50]), torch.tensor([2, 0, 50]))
    assert torch.allclose(outside, (ce(out.start_logits[:2], starts[:2]) + ce(out.end_logits[:2], ends[:2])) / 2)
    model.train()
    loss = model(ids, mask, start_positions=starts, end_positions=ends, reasoning_labels=labels).loss
    loss.backward()
    assert model.qa_outputs.weight.grad.abs().sum() > 0 and model.reasoning_classifier.weight.grad.abs().sum() > 0
    assert model.bert.pooler.dense.weight.grad.abs().sum() > 0  # the reasoning head reads the pooler


def test_question_mean_pooling_reads_the_question_segment(tmp_path):
    model = tiny_reader(reasoning_pooling="question_mean")
    ids = torch.randint(1, 99, (2, 10))
    types = torch.tensor([[0] * 4 + [1] * 6, [0] * 6 + [1] * 4])
    mask = torch.tensor([[1] * 10, [1] * 8 + [0] * 2])
    out = model(ids, mask, types)
    hidden, _ = model.bert(ids, mask, types)
    question = [hidden[0, :4].mean(0), hidden[1, :6].mean(0)]  # [CLS] question [SEP] = token type 0
    expected = model.reasoning_classifier(torch.tanh(model.bert.pooler.dense(torch.stack(question))))
    assert torch.allclose(out.reasoning_logits, expected, atol=1e-6)
    model.save_pretrained(tmp_path)
    back = BertForQuestionAnsweringWithReasoning.from_pretrained(tmp_path).eval()
    assert back.reasoning_pooling == "question_mean"
    assert torch.allclose(back(ids, mask, types).reasoning_logits, out.reasoning_logits, atol=1e-6)


def test_bad_head_arguments():
    with pytest.raises(ValueError, match="distinct"):
        tiny_reader(reasoning_labels=["a", "a"])
    with pytest.raises(ValueError, match=">= 0"):
        tiny_reader(reasoning_loss_weight=-1)
    with pytest.raises(ValueError, match="reasoning_pooling"):
        tiny_reader(reasoning_pooling="max")
    with pytest.raises(ValueError, match=r"reader_windows .*unknown keys \['stride'\]"):
        tiny_reader(reader_windows={"stride": 64})
    with pytest.raises(ValueError, match="bad values"):
        tiny_reader(reader_windows={"max_length": "256"})


def test_saved_reader_loads_in_transformers_and_back(tmp_path):
    from transformers import AutoModel, AutoModelForQuestionAnswering, BertForQuestionAnswering

    windows = {"max_length": 256, "doc_stride": 64, "max_query_length": 64, "max_answer_length": 30}
    model = tiny_reader(reasoning_labels=["factual", "causal", "other"], reader_windows=windows)
    model.save_pretrained(tmp_path)  # reader_windows in config.json: transformers keeps it as an unknown key
    ids = torch.randint(1, 99, (2, 9))
    mask = torch.tensor([[1] * 9, [1] * 6 + [0] * 3])
    ours = model(ids, mask)
    hf = AutoModelForQuestionAnswering.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert isinstance(hf, BertForQuestionAnswering)
    with torch.no_grad():
        theirs = hf(input_ids=ids, attention_mask=mask)
    keep = mask.bool()
    assert torch.allclose(ours.start_logits[keep], theirs.start_logits[keep], atol=1e-5)
    assert torch.allclose(ours.end_logits[keep], theirs.end_logits[keep], atol=1e-5)
    encoder = AutoModel.from_pretrained(tmp_path, attn_implementation="eager").eval()
    with torch.no_grad():
        hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(model.bert(ids, mask)[0][keep], hidden[keep], atol=1e-5)
    back = BertForQuestionAnsweringWithReasoning.from_pretrained(tmp_path).eval()
    assert back.reasoning_labels == ["factual", "causal", "other"] and back.reader_windows == windows
    again = back(ids, mask)
    assert torch.equal(again.start_logits, ours.start_logits) and torch.equal(
        again.reasoning_logits, ours.reasoning_logits
    )


def test_bare_encoder_gets_fresh_heads_and_bad_heads_are_refused(tmp_path, minilm_path):
    model = BertForQuestionAnsweringWithReasoning.from_pretrained(minilm_path)
    assert model.config.hidden_size == 384 and model.bert.pooler is not None
    tiny_reader().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "reasoning_labels": ["a", "b"]}))
    with pytest.raises(ValueError, match=r"reasoning_classifier\.\w+ of shape \(6"):
        BertForQuestionAnsweringWithReasoning.from_pretrained(tmp_path)


# --- metric, weak labels, split ------------------------------------------------------------------------------------


def test_squad_metric_on_hand_cases():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert f1_score("Denver Broncos", "the Denver Broncos") == 1.0
    assert f1_score("Broncos", "Denver Broncos") == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert f1_score("Carolina", "Denver Broncos") == 0.0
    assert f1_score("", "Denver") == 0.0
    scores = squad_scores({"q1": "Denver Broncos", "q2": "Panthers"}, {"q1": ["The Denver Broncos."],
                          "q2": ["Carolina Panthers", "the Panthers"], "q3": ["24"]})  # fmt: skip
    assert scores["exact_match"] == pytest.approx(200 / 3)  # q2 matches its second answer; q3 has no prediction
    assert scores["f1"] == pytest.approx(200 / 3)


@pytest.mark.parametrize(
    "question, label",
    [
        ("Why did the Shah of Iran give an interview?", "causal"),
        ("What caused Luther to write hymns?", "causal"),
        ("Which player had the most interceptions?", "comparative"),
        ("How much heavier is oxygen 18 than oxygen 16?", "comparative"),  # rule 2 before rule 3
        ("How many points did the Panthers surrender?", "quantitative"),
        ("What percentage of voters failed to vote?", "quantitative"),
        ("When did Victoria enact its constitution?", "temporal"),
        ("In what year did Tesla die?", "temporal"),
        ("How did Turabi build a strong economic base?", "manner"),
        ("Who won Super Bowl 50?", "factual"),
        ("Where is Levi's Stadium?", "factual"),
    ],
)
def test_weak_reasoning_rules(question, label):
    assert weak_reasoning_label(question) == label


def test_split_is_by_article_and_seeded():
    articles = [{"title": f"a{i}", "paragraphs": [{"context": f"p{i}", "qas": []}]} for i in range(10)]
    train, dev, ev = split_articles(articles, 3, 2, seed=1)
    assert (len(train), len(dev), len(ev)) == (5, 2, 3)
    assert {a["title"] for a in train} | {a["title"] for a in dev} | {a["title"] for a in ev} == {
        f"a{i}" for i in range(10)
    }
    assert split_articles(articles, 3, 2, seed=1) == (train, dev, ev) and split_articles(articles, 3, 2, seed=2) != (
        train,
        dev,
        ev,
    )
    with pytest.raises(ValueError):
        split_articles(articles, 8, 2)


def test_negatives_come_from_the_same_article_without_answer():
    ex = [{"id": f"q{i}", "title": t, "paragraph_id": f"{t}/{i}", "context": f"ctx {t}{i}", "question": "q?",
           "answers": ["x"], "answer": {"text": "x", "answer_start": 0}} for t in "ab" for i in range(3)]  # fmt: skip
    out = with_negatives(ex, 1, seed=0)
    negatives = out[len(ex) :]
    assert len(negatives) == len(ex) and all(n["answer"] is None for n in negatives)
    for original, negative in zip(ex, negatives):
        assert negative["title"] == original["title"] and negative["paragraph_id"] != original["paragraph_id"]


# --- documents and ask ---------------------------------------------------------------------------------------------

OXYGEN = (
    "Oxygen is a chemical element with symbol O and atomic number 8. It was discovered by Carl Wilhelm Scheele in "
    "1773 and independently by Joseph Priestley in 1774. Antoine Lavoisier named the element in 1777."
)
TESLA = (
    "Nikola Tesla was born in 1856 in the village of Smiljan. He moved to the United States in 1884 to work for "
    "Thomas Edison. Tesla died in New York City in January 1943."
)


def write_pdf(path, lines: list[str]) -> None:
    """A one-page PDF with one text line per entry (Helvetica), written by hand: catalog, pages, page, content
    stream, font, then the cross-reference table with the byte offset of every object."""
    esc = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in lines]
    stream = "BT /F1 10 Tf 12 TL 40 760 Td " + " ".join(f"({line}) Tj T*" for line in esc) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{obj}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(out)


def test_markdown_and_pdf_ingestion(tmp_path):
    md = "# Oxygen\n\nOxygen is **element** 8, see [the table](http://x.org).\n\n```\ncode\n```\n\n- a list item.\n"
    assert markdown_to_text(md).split() == "Oxygen Oxygen is element 8, see the table. a list item.".split()
    pdf = tmp_path / "doc.pdf"
    write_pdf(pdf, [OXYGEN[:60], OXYGEN[60:], TESLA])
    text = read_document(pdf)
    assert "Joseph Priestley in 1774" in text and "Tesla died in New York City" in text  # parsed by pypdf
    passages = split_passages(text, sentences=2, overlap=1)
    assert len(passages) == 5 and passages[0].startswith("Oxygen is") and passages[-1].endswith("January 1943.")
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(ValueError, match="not a readable PDF"):
        read_document(tmp_path / "bad.pdf")
    (tmp_path / "notes.md").write_text("## Tesla\n\n" + TESLA)
    (p,) = document_passages([tmp_path / "notes.md"], sentences=4)
    assert p.id == "notes.md#0" and p.text == "Tesla: " + TESLA  # the heading is put in front of its paragraph


@pytest.fixture(scope="module")
def untrained_reader_dir(tmp_path_factory, minilm_path, tokenizer):
    """MiniLM with freshly initialised heads, saved as a reader (the pipeline, not reading quality, is tested)."""
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("reader")
    BertForQuestionAnsweringWithReasoning.from_pretrained(minilm_path).save_pretrained(out, tokenizer)
    return out


def test_ask_over_a_pdf_retrieves_the_right_passage(tmp_path, untrained_reader_dir, packaged_minilm):
    from st_bertapprox.qa.pipeline import DocumentQA

    pdf = tmp_path / "doc.pdf"
    write_pdf(pdf, [OXYGEN, "", TESLA, CONTEXT])
    qa = DocumentQA(Reader(untrained_reader_dir), packaged_minilm).add_documents([pdf], sentences=3, overlap=0)
    assert len(qa.passages) == 3
    got = qa.ask("Who discovered oxygen in 1774?", k=1)
    assert got.passage_id == "doc.pdf#0" and got.passage.startswith("Oxygen is")
    assert got.text and got.text in got.passage and got.passage[got.start_char : got.end_char] == got.text
    assert got.reasoning in REASONING_TYPES and got.retrieved == ["doc.pdf#0"]
    many = qa.ask_many(["Who won Super Bowl 50?", "When did Tesla die?"], k=2)
    assert [a.retrieved[0] for a in many] == ["doc.pdf#2", "doc.pdf#1"]
    assert all(a.passage_id in a.retrieved and a.text in a.passage for a in many)


def test_cli_ask_over_a_text_file(tmp_path, untrained_reader_dir, capsys):
    from st_bertapprox.cli.main import main

    doc = tmp_path / "doc.txt"
    doc.write_text(f"{OXYGEN}\n\n{TESLA}\n\n{CONTEXT}\n")
    main(
        ["ask", str(doc), "Where was Nikola Tesla born?", "--reader", str(untrained_reader_dir), "--k", "2", "--json"]
    )
    got = json.loads(capsys.readouterr().out)
    assert got["passage_id"] == "doc.txt#1" and got["retrieved"][0] == "doc.txt#1"
    assert got["text"] in TESLA and got["reasoning"] in REASONING_TYPES
    with pytest.raises(SystemExit) as e:
        main(["ask", str(tmp_path / "missing.pdf"), "q?", "--reader", str(untrained_reader_dir)])
    assert e.value.code == 2 and "No document" in capsys.readouterr().err


def test_example_over_a_held_out_article(untrained_reader_dir, capsys):
    import importlib.util
    from pathlib import Path

    from conftest import require_dataset

    require_dataset("xquad-en")
    path = Path(__file__).resolve().parents[1] / "examples" / "qa_over_document.py"
    spec = importlib.util.spec_from_file_location("qa_over_document", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main(["--reader", str(untrained_reader_dir), "--k", "1", "--max-questions", "2"])
    out = capsys.readouterr().out
    assert re.match(r"\d+ passages from Oxygen\.md; retriever: teacher\n", out)
    assert out.count("\nQ: ") == 2 and out.count("(gold: ") == 2 and "passage Oxygen.md#" in out


def test_train_reader_with_trainer_fits_a_few_examples(tmp_path, tokenizer):
    """transformers.Trainer on a tiny random BERT with the real tokenizer: labels reach the loss, it falls, the
    reader is saved where asked and reads its training question back."""
    from dataclasses import replace

    from st_bertapprox.config import QAConfig
    from st_bertapprox.qa.train import train_reader

    torch.manual_seed(0)
    base = tmp_path / "base"
    BertForQuestionAnsweringWithReasoning(tiny_bert_config(vocab_size=len(tokenizer), max_position_embeddings=128),
                                          ).save_pretrained(base, tokenizer)  # fmt: skip
    examples = [
        {
            "id": f"q{i}",
            "title": "t",
            "paragraph_id": f"t/{i}",
            "context": c,
            "question": q,
            "answers": [a],
            "answer": answer(a, c),
        }  # fmt: skip
        for i, (c, q, a) in enumerate(
            [(CONTEXT, "Who won?", "Denver Broncos"), (TESLA, "Where was Tesla born?", "Smiljan")]
        )
    ]
    config = replace(
        QAConfig.small(),
        epochs=15,
        batch_size=4,
        learning_rate=1e-2,
        head_learning_rate=1e-2,
        warmup_ratio=0.0,
        max_length=128,
        doc_stride=32,
    )
    model, tok, facts = train_reader(examples, config, str(tmp_path / "reader"), str(base))
    assert facts["features"] == 4 and facts["features_without_answer"] == 2  # one negative per question
    assert facts["steps"] == 15 and facts["log"][-1]["loss"] < facts["log"][0]["loss"] / 2
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in (tmp_path / "reader").iterdir()}
    assert not (tmp_path / "reader" / "checkpoints").exists()
    saved = json.loads((tmp_path / "reader" / "config.json").read_text())["reader_windows"]
    assert saved == {"max_length": 128, "doc_stride": 32, "max_query_length": 64, "max_answer_length": 30}
    reader = Reader(tmp_path / "reader")  # reads with the windows it was trained with
    assert windows_of(reader) == (128, 32, 64, 30)
    got = reader.read(["Who won?"], [CONTEXT])[0]
    assert got.text == "Denver Broncos" and got.reasoning == "factual"


@pytest.fixture(scope="module")
def small_reader_dir(tmp_path_factory, tokenizer):
    """A tiny random reader on the MiniLM tokenizer, saved with ``train-qa --small``'s windows (256 / 64)."""
    from st_bertapprox.config import QAConfig
    from st_bertapprox.qa.train import reader_windows

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("small-reader")
    config = tiny_bert_config(vocab_size=len(tokenizer), max_position_embeddings=512)
    model = BertForQuestionAnsweringWithReasoning(config, reader_windows=reader_windows(QAConfig.small()))
    model.save_pretrained(out, tokenizer)
    return out


def windows_of(reader: Reader) -> tuple[int, int, int, int]:
    return reader.max_length, reader.doc_stride, reader.max_query_length, reader.max_answer_length


def test_a_saved_reader_reads_with_its_windows(small_reader_dir, tmp_path, tokenizer):
    from st_bertapprox.config import QAConfig

    small = QAConfig.small()
    assert (small.max_length, small.doc_stride) == (256, 64)
    assert BertForQuestionAnsweringWithReasoning.from_pretrained(small_reader_dir).reader_windows == {
        "max_length": 256, "doc_stride": 64, "max_query_length": 64, "max_answer_length": 30}  # fmt: skip
    assert windows_of(Reader(small_reader_dir)) == (256, 64, 64, 30)
    assert windows_of(Reader(small_reader_dir, max_length=128, doc_stride=32)) == (128, 32, 64, 30)  # explicit wins
    # a reader saved without its windows (a bare encoder, or saved before they were recorded): QAConfig's defaults
    torch.manual_seed(0)
    config = tiny_bert_config(vocab_size=len(tokenizer), max_position_embeddings=512)
    BertForQuestionAnsweringWithReasoning(config).save_pretrained(tmp_path, tokenizer)
    assert "reader_windows" not in json.loads((tmp_path / "config.json").read_text())
    default = QAConfig()
    assert windows_of(Reader(tmp_path)) == (default.max_length, default.doc_stride, default.max_query_length,
                                            default.max_answer_length) == (384, 128, 64, 30)  # fmt: skip


def test_cli_ask_reads_with_the_readers_windows(tmp_path, small_reader_dir, packaged_minilm, monkeypatch, capsys):
    """``ask`` on a ``train-qa --small`` reader cuts windows of 256 pieces with stride 64, not the library's 384."""
    import st_bertapprox.qa.reader as reader_module
    from st_bertapprox.cli.main import main

    seen = []

    def spy(*args, **kwargs):
        seen.append((kwargs["max_length"], kwargs["doc_stride"], kwargs["max_query_length"]))
        return prepare(*args, **kwargs)

    prepare = reader_module.prepare_features
    monkeypatch.setattr(reader_module, "prepare_features", spy)
    monkeypatch.setattr("st_bertapprox.inference.encoders.load_encoder", lambda *a, **k: packaged_minilm)
    doc = tmp_path / "doc.txt"
    doc.write_text(f"{OXYGEN}\n\n{TESLA}\n")
    main(["ask", str(doc), "Where was Nikola Tesla born?", "--reader", str(small_reader_dir), "--k", "1", "--json"])
    got = json.loads(capsys.readouterr().out)
    assert got["reasoning"] in REASONING_TYPES and seen == [(256, 64, 64)]
