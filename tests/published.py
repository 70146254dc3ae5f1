"""The worked example's figures as published (the oracle of every test that checks them), to the published digits."""

#: one step of the seed's 2-2-2 network: forward pass, E_total, the updated weights (lr 0.5), E after the update
PUBLISHED = {
    "net_h1": 0.3775,
    "out_h1": 0.593269992,
    "out_h2": 0.596884378,
    "out_o1": 0.75136507,
    "out_o2": 0.772928465,
    "E_total": 0.298371109,
    "dE_dw5": 0.082167041,
    "w5_new": 0.35891648,
    "w6_new": 0.408666186,
    "w7_new": 0.511301270,
    "w8_new": 0.561370121,
    "dE_dout_h1": 0.036350306,
    "w1_new": 0.149780716,
    "w2_new": 0.19956143,
    "w3_new": 0.24975114,
    "w4_new": 0.29950229,
    "E_total_new": 0.291027774,
}
