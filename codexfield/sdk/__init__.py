"""Client-side SDK: consumers sign vouchers, nodes verify and batch them."""
