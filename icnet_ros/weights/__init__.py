"""The weight-file contract that training shares: weight files, label sets, pre-processing, Caffe import, the demo weights."""
