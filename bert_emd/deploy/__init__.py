"""What a user deploys: size and speed per backend, int8 quantisation, ONNX export checked against PyTorch."""

from bert_emd.deploy.benchmark import BenchmarkConfig, benchmark
from bert_emd.deploy.export import ExportConfig, export
from bert_emd.deploy.quantize import QuantizeConfig, quantize

__all__ = ["BenchmarkConfig", "ExportConfig", "QuantizeConfig", "benchmark", "export", "quantize"]
