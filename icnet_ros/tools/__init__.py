"""Command-line tools: Caffe conversion, rosbag evaluation, benchmarks, sample data."""
