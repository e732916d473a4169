"""Pure PyTorch models: ICNet (and the Caffe-compatible operations it needs), the PSPNet50
baseline, PIDNet and DDRNet; ``registry`` builds any of them from weight-file metadata."""

from icnet_ros.model.ddrnet import DDRNet, ddrnet
from icnet_ros.model.icnet import BRANCHES, ICNet, icnet
from icnet_ros.model.pidnet import PIDNet, pidnet
from icnet_ros.model.pspnet import PSPNet, pspnet50_baseline

__all__ = ["BRANCHES", "DDRNet", "ICNet", "PIDNet", "PSPNet", "ddrnet", "icnet", "pidnet", "pspnet50_baseline"]
