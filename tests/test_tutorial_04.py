"""Tutorial 04 (pynsm's demo_nsm_conv_mnist / demo_supervised_mnist) in quick mode.

Quick mode trains on 200 digits for 2 minibatch steps, so it checks the pipeline end to end (conv NSM with pynsm's
defaults, 2x2 max-pooled features, linear SVM), not the full-run accuracy, which is reported by
`python tutorials/04_conv_nsm_mnist.py` (about 96% on the 4000/1000 split)."""






def test_tutorial_04_quick_pipeline(load_tutorial):
    tut = load_tutorial("04_conv_nsm_mnist")
    out = tut.main(quick=True)
    assert out["n_train"] == 200 and out["n_test"] == 100
    for variant in ("unsupervised", "supervised"):
        res = out[variant]
        assert res["n_features"] == 50 * 11 * 11
        assert res["steps"] == 2
        assert res["test_acc"] >= 0.75                 # chance is 0.10; raw pixels get ~0.8 on this tiny split
        assert res["final_kkt_residual"] <= 1e-10      # the fast loop reached the NSM fixed point
    assert out["raw_pixels"]["test_acc"] >= 0.6
    assert (tut.FIGURES / "04_conv_nsm_filters.png").exists()
