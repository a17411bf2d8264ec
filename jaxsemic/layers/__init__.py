"""Neural network building blocks shared by all codecs (CompressAI's `layers`)."""

from jaxsemic.layers.conv import Conv, TransposedConv, conv2d, SubpelConv, depth_to_space, polyphase_index
from jaxsemic.layers.gdn import GDN
from jaxsemic.layers.residual import (ResidualBlock, ResidualBlockWithStride, ResidualBlockUpsample,
                                      AttentionBlock)

__all__ = ["Conv", "TransposedConv", "conv2d", "SubpelConv", "depth_to_space", "polyphase_index", "GDN",
           "ResidualBlock", "ResidualBlockWithStride", "ResidualBlockUpsample", "AttentionBlock"]
