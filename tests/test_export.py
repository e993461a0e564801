"""ONNX export: ONNX Runtime agrees with PyTorch on new shapes; int8 file; missing packages named."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig, BertForSequenceClassification

import bert_emd
from bert_emd.cli import main
from tests.conftest import TINY_SIZES, minilm_dir
from tests.test_bad_input import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_classifier")
    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(vocab_size=30522, num_hidden_layers=2, num_labels=2,
                                             **TINY_SIZES)).save_pretrained(path)
    AutoTokenizer.from_pretrained(minilm_dir()).save_pretrained(path)
    return path


def test_export_round_trip_with_dynamic_axes_and_int8(tiny_classifier, glue_dir, tmp_path):
    output = tmp_path / "onnx"
    report = bert_emd.export(model=str(tiny_classifier), output=str(output), int8=True, task="mrpc",
                             data_dir=str(glue_dir), check_samples=16)
    assert report["examples"] == 16 and report["files"]["model.onnx"]["max_abs_diff"] <= 1e-4
    assert report["files"]["model_int8.onnx"]["size_mb"] < report["files"]["model.onnx"]["size_mb"]
    assert json.loads((output / "export_report.json").read_text())["files"].keys() == {"model.onnx",
                                                                                       "model_int8.onnx"}
    # Independent check on a batch size and length the exporter never saw, with the saved tokenizer.
    import onnxruntime

    tokenizer = AutoTokenizer.from_pretrained(output)
    texts = ["one", "a much longer sentence than any used while tracing the graph, with commas", "three words here"]
    encoded = tokenizer(texts, padding=True, return_tensors="np")
    session = onnxruntime.InferenceSession(str(output / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(None, {item.name: encoded[item.name].astype(np.int64) for item in session.get_inputs()})[0]
    model = AutoModelForSequenceClassification.from_pretrained(tiny_classifier).eval()
    with torch.inference_mode():
        expected = model(**{key: torch.from_numpy(value) for key, value in encoded.items()}).logits.numpy()
    assert logits.shape == (3, 2)
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    int8 = onnxruntime.InferenceSession(str(output / "model_int8.onnx"), providers=["CPUExecutionProvider"])
    int8_logits = int8.run(None, {item.name: encoded[item.name].astype(np.int64) for item in int8.get_inputs()})[0]
    np.testing.assert_allclose(int8_logits, expected, atol=0.05)



def _dequantised_matmul_weights(folder) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per int8 MatMul weight of model_int8.onnx: (its fp32 original from model.onnx, (q - zero point) * scale,
    the scale)."""
    import onnx
    from onnx import numpy_helper

    fp32 = {item.name: numpy_helper.to_array(item) for item in onnx.load(str(folder / "model.onnx")).graph.initializer}
    int8 = {item.name: numpy_helper.to_array(item)
            for item in onnx.load(str(folder / "model_int8.onnx")).graph.initializer}
    out = {}
    for name, quantised in int8.items():
        base = name.removesuffix("_quantized")
        if base != name and quantised.dtype == np.int8 and quantised.ndim == 2:  # the Linear weights (K x N)
            scale, zero = int8[base + "_scale"], int8[base + "_zero_point"]
            source = base.removesuffix("_Transposed")  # a Gemm weight ORT transposed to K x N first
            original = fp32[source] if source == base else fp32[source].T
            out[base] = (original, (quantised.astype(np.float32) - zero.astype(np.float32)) * scale, scale)
    return out


def test_int8_weights_have_one_scale_per_output_channel_unless_asked_otherwise(tiny_classifier, tmp_path):
    schemes = {}
    for per_channel in (True, False):
        output = tmp_path / f"per_channel_{per_channel}"
        report = bert_emd.export(model=str(tiny_classifier), output=str(output), int8=True, check_samples=4,
                                 int8_per_channel=per_channel)
        assert report["files"]["model_int8.onnx"]["weight_scales"] == ("per channel" if per_channel
                                                                       else "per tensor")
        schemes[per_channel] = _dequantised_matmul_weights(output)
    assert schemes[True].keys() == schemes[False].keys() and len(schemes[True]) >= 2 * 6  # 2 layers x 6 Linears
    for name, (original, restored, scale) in schemes[True].items():
        assert scale.shape == (original.shape[1],)  # one scale per output column of the K x N weight
        # each column rounded to its own grid: no element further than half a step of its column from the original
        assert np.all(np.abs(restored - original) <= scale / 2 + 1e-6)
        per_tensor_original, per_tensor_restored, per_tensor_scale = schemes[False][name]
        assert per_tensor_scale.shape == () and per_tensor_scale >= scale.max() - 1e-7
        assert np.abs(restored - original).mean() <= np.abs(per_tensor_restored - per_tensor_original).mean()

def test_export_of_a_roberta_model_without_token_types(tiny_roberta, tmp_path):
    classifier = tmp_path / "roberta_classifier"
    AutoModelForSequenceClassification.from_pretrained(tiny_roberta, num_labels=3).save_pretrained(classifier)
    AutoTokenizer.from_pretrained(tiny_roberta).save_pretrained(classifier)
    report = bert_emd.export(model=str(classifier), output=str(tmp_path / "onnx"))
    assert report["input_names"] == ["input_ids", "attention_mask"]
    assert report["files"]["model.onnx"]["max_abs_diff"] <= 1e-4


def test_missing_onnx_packages_are_named(capsys, tiny_classifier, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    code, err = run_cli(capsys, "export", "--model", str(tiny_classifier), "--output", str(tmp_path / "x"))
    assert_one_line_error(code, err, "onnxruntime is missing", "pip install 'bert-emd[deploy]'")


def test_export_cli_requires_a_classifier(capsys, tiny_bert, tmp_path):
    code = main(["export", "--model", str(tiny_bert), "--output", str(tmp_path / "x")])
    assert code == 2
    assert "no sequence-classification head" in capsys.readouterr().err


def test_quantize_saves_a_reloadable_int8_model_close_to_fp32(tiny_classifier, glue_dir, tmp_path):
    output = tmp_path / "int8"
    results = bert_emd.quantize(model=str(tiny_classifier), output=str(output), task="sst2", data_dir=str(glue_dir),
                                max_eval_samples=64)
    dev = results["splits"]["dev"]
    assert abs(dev["change"]["accuracy"]) <= 0.05
    assert dev["agreement_with_fp32"]["label_loyalty"] >= 0.9
    reloaded = AutoModelForSequenceClassification.from_pretrained(output)  # transformers + torchao, no bert_emd
    assert "torchao" in type(reloaded.bert.encoder.layer[0].attention.self.query.weight).__module__
    assert json.loads((output / "eval_results.json").read_text())["splits"]["dev"]["num_examples"] == 64


def test_benchmark_json_has_every_field_for_every_backend(tiny_classifier, tiny_roberta, tmp_path):
    roberta = tmp_path / "roberta_classifier"
    AutoModelForSequenceClassification.from_pretrained(tiny_roberta, num_labels=2).save_pretrained(roberta)
    AutoTokenizer.from_pretrained(tiny_roberta).save_pretrained(roberta)
    report_path = tmp_path / "bench.json"
    code = main(["benchmark", "--model", str(tiny_classifier), "--model", str(roberta), "--batch-sizes", "1,2",
                 "--lengths", "8", "--repeats", "2", "--warmup", "1", "--output", str(report_path)])
    assert code == 0
    report = json.loads(report_path.read_text())
    assert [entry["model"] for entry in report["models"]] == [str(tiny_classifier), str(roberta)]
    backends = {"torch-fp32", "torch-int8", "torch-int8-legacy", "ort-fp32", "ort-int8"}
    for entry in report["models"]:
        assert entry["parameters"] > entry["parameters_without_embeddings"] > 0
        assert set(entry["backends"]) == backends
        for measured in entry["backends"].values():
            assert measured["size_mb"] > 0
            assert set(measured["settings"]) == {"batch1_len8", "batch2_len8"}
            for setting in measured["settings"].values():
                assert setting["p90_ms"] >= setting["p50_ms"] > 0
                assert setting["throughput_per_s"] == pytest.approx(setting["batch_size"] / setting["p50_ms"] * 1000)
                assert setting["speedup_vs_first_model"] > 0 and setting["speedup_vs_torch_fp32"] > 0
    first = report["models"][0]["backends"]["ort-fp32"]["settings"]["batch2_len8"]
    assert first["speedup_vs_first_model"] == pytest.approx(1.0)


def test_benchmark_bad_backend_and_missing_torchao(capsys, tiny_classifier, monkeypatch):
    code, err = run_cli(capsys, "benchmark", "--model", str(tiny_classifier), "--backends", "torch-fp32,tpu")
    assert_one_line_error(code, err, "unknown backend(s) tpu")
    monkeypatch.setitem(sys.modules, "torchao", None)
    code, err = run_cli(capsys, "quantize", "--model", str(tiny_classifier), "--output", "unused")
    assert_one_line_error(code, err, "needs the optional package torchao", "bert-emd[deploy]")
