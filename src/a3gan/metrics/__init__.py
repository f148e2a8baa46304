"""Evaluation metrics of the paper's protocol (Sec. 5, Table 1, Table 5), each a pure, tested function.

- :mod:`.verification`: cosine similarity, FAR-calibrated thresholds, verification rate, rank-1, ROC AUC
- :mod:`.detection`: re-detection rate and confidence (CenterFace, dlib HOG, dlib CNN)
- :mod:`.attributes`: the evaluation-only attribute classifier, preservation / change rates
- :mod:`.landmarks`: EAR / MAR (fatigue proxy), Procrustes landmark disparity (expression proxy)
- :mod:`.brisque`: BRISQUE on NumPy 2.x; :mod:`.fid`: Fréchet distance and FID; :mod:`.quality`: background SSIM/PSNR
- :mod:`.report`: report.md / report.json / plots of ``a3gan evaluate`` (driven by :mod:`a3gan.evaluate`)
"""
