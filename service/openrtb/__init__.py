"""The OpenRTB 2.6 bidder: exchanges send a BidRequest, we answer a BidResponse (issue 16)."""
