"""Tutorial 02 (pynsm's demo_pca): linear SM finds the principal subspace."""


import numpy as np





def test_tutorial_02_reproduces_pca(load_tutorial):
    tut = load_tutorial("02_similarity_matching_pca")
    out = tut.main(quick=True)
    assert abs(out["theory_floor"] - (0.2**4 + 0.1**4)) < 1e-15
    assert out["final_mismatch"] <= 2.0e-3            # theory 1.7e-3; pynsm's run 1.705e-3
    assert out["mean_last20_mismatch"] <= 2.0e-3
    assert min(out["principal_cosines"]) >= 0.999     # pynsm's run: [1.0, 0.99999, 0.99992]
    eig, var = np.array(out["eig_M"]), np.array(out["top3_variances"])
    assert np.all(np.abs(eig / var - 1) <= 0.10)      # pynsm's run: [0.621, 1.411, 2.152] vs [0.64, 1.44, 2.25]
    assert np.all(np.abs(np.array(out["FFt_diag"]) - 1) <= 0.01)
    assert (tut.FIGURES / "02_similarity_mismatch.png").exists()
