"""Official Caffe weights without Caffe: a wire-format ``.caffemodel`` reader and converter."""

from icnet_ros.weights.caffe.caffemodel import CaffeError, CaffeLayer, CaffeNet, parse_net, read_caffemodel
from icnet_ros.weights.caffe.convert import convert_caffemodel, detect_form, icnet_from_caffe
from icnet_ros.weights.caffe.releases import OFFICIAL_RELEASES, OfficialRelease

__all__ = [
    "CaffeError", "CaffeLayer", "CaffeNet", "OFFICIAL_RELEASES", "OfficialRelease",
    "convert_caffemodel", "detect_form", "icnet_from_caffe", "parse_net", "read_caffemodel",
]
