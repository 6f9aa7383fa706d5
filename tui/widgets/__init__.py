"""The tabs' views and the small widgets they are made of."""
