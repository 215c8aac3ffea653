"""Exporters, installed as `irflow_engine.export`: ONNX graphs of the network and of the whole
K-step sampler, INT8 calibration and TensorRT engines. They are built in the export issue; this
package holds none yet.
"""
