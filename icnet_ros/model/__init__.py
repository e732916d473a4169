"""Pure PyTorch models: ICNet and the Caffe-compatible operations it needs."""

from icnet_ros.model.icnet import BRANCHES, ICNet, icnet

__all__ = ["BRANCHES", "ICNet", "icnet"]
