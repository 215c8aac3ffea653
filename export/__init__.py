"""Exporters, installed as `irflow_engine.export` (see docs/export.md).

    graph.py         export-ready network / K-step sampler modules (padding in the graph, schedule folded)
    onnx.py          ONNX export, metadata, ONNX Runtime sessions, parity against eager
    graph_cache.py   exported sampler graphs cached on disk (keyed by weights and settings)
    calib_frames.py  calibration frames (image folders, iterables, a video-reader hook) and feeds
    calibrate.py     INT8: calibration, the reusable calibration table, Q/DQ quantisation
    quant_report.py  per-layer error of a Q/DQ model against its float model
    engine_cache.py  TensorRT engine sidecars, cache keys, compatibility checks (no TensorRT needed)
    tensorrt.py      TensorRT 10/11 engine builder and loader
    deps.py          optional dependencies, with install hints

Importing this package imports none of onnx, onnxruntime or tensorrt; each module imports what it
needs when it is used.
"""
