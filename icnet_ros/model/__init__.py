"""Pure PyTorch models: ICNet and the Caffe-compatible operations it needs."""

from icnet_ros.model.icnet import BRANCHES, ICNet, icnet
from icnet_ros.model.pspnet import PSPNet, pspnet50_baseline

__all__ = ["BRANCHES", "ICNet", "PSPNet", "icnet", "pspnet50_baseline"]
