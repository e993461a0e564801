"""What a user deploys: ONNX export (fp32 and int8) checked against PyTorch."""

from bert_emd.deploy.export import ExportConfig, export

__all__ = ["ExportConfig", "export"]
