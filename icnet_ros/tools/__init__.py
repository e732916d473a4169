"""User command-line tools: Caffe conversion, rosbag evaluation, sample bags."""
