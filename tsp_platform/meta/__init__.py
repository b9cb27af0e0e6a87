"""Meta-portfolios: allocation across sleeves (other profiles) and flattening to net physical weights."""
