"""Numbers that say how a brain sounds: ``liveframe eval BRAIN VIDEO``.

All in numpy (no scipy, librosa or matplotlib). Signals are mono float32 at ``sr``.

- :func:`mel_distance_db`: log-mel spectral distance (dB) between a rendered and a true
  soundtrack: per STFT frame the RMS over 64 mel bands of the difference of their dB
  levels (each floored 80 dB under the loudest cell of the true soundtrack), averaged over
  frames. 0 for identical signals.
- :func:`envelope_corr`: Pearson correlation of the loudness envelopes (RMS level in dB,
  one value per brain tick): does the sound follow the action. 1 for identical signals.
- :func:`frame_artifact_db`: the 2015 "30 Hz harmonics". Block-edge clicks and amplitude
  modulation at the frame rate are both periodic in the signal's *power envelope*. We take
  the power envelope ``|x + j hilbert(x)|^2`` (the analytic signal, so a steady tone has a
  flat envelope instead of a line at twice its frequency), normalise it by its mean, and
  average its power spectrum (Welch, Hann, 2^15-sample segments at 22050 Hz = 0.67 Hz
  bins, shorter for clips under 1.5 s). For each
  harmonic ``k * fps`` (k = 1..10) the energy within +-1.5 Hz is compared with the median
  bin of the neighbourhood ``k*fps +- 10 Hz`` (the bins within 3 Hz excluded), scaled to
  the same number of bins. The result is ``10 log10`` of the summed harmonic energy over
  the summed neighbourhood estimate: about 0 dB when nothing happens at the frame rate,
  tens of dB when blocks are cut and concatenated. A floor of 1e-12 (relative modulation
  power per bin) keeps silence and perfectly steady signals at 0 dB.
- :func:`rms_dbfs`: RMS level (dBFS, floored at -150); of the output for an all-black
  input it is the black level, what the instrument plays in the dark.
- :func:`level_db`: the rendered soundtrack's RMS level minus the true one's (dB): 0 when
  the brain plays as loud as the film, -40 when it whispers.

:mod:`liveframe.offline.evaluate` renders a brain in each mode and takes these numbers.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from liveframe import constants as C

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

N_FFT = 1024
HOP_LENGTH = 256
N_MELS = 64
TOP_DB = 80.0
HARMONICS = 10
FLOOR_DBFS = -150.0


# -- spectra ---------------------------------------------------------------------------


def hz_to_mel(f: npt.ArrayLike) -> F64:
    """HTK mel scale."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def mel_to_hz(m: npt.ArrayLike) -> F64:
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def mel_filterbank(*, sr: int, n_fft: int = N_FFT, n_mels: int = N_MELS,
                   fmin: float = 0.0, fmax: float | None = None) -> F64:
    """Triangular mel filters, shape (n_mels, n_fft // 2 + 1), each of unit area (Slaney)."""
    fmax = sr / 2 if fmax is None else fmax
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fb = np.zeros((n_mels, freqs.shape[0]))
    for i in range(n_mels):
        lo, c, hi = edges[i], edges[i + 1], edges[i + 2]
        up = (freqs - lo) / max(c - lo, 1e-9)
        down = (hi - freqs) / max(hi - c, 1e-9)
        fb[i] = np.maximum(0, np.minimum(up, down)) * (2.0 / (hi - lo))
    return fb


def stft_power(x: F32, *, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> F64:
    """Power spectrogram, shape (frames, n_fft // 2 + 1); periodic Hann, centred frames."""
    x = np.asarray(x, np.float64)
    pad = n_fft // 2
    x = np.pad(x, (pad, pad))
    if x.shape[0] < n_fft:
        x = np.pad(x, (0, n_fft - x.shape[0]))
    n = 1 + (x.shape[0] - n_fft) // hop_length
    idx = np.arange(n_fft)[None, :] + hop_length * np.arange(n)[:, None]
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    return np.abs(np.fft.rfft(x[idx] * w, axis=1)) ** 2


def log_mel(x: F32, *, sr: int, ref: float | None = None, n_mels: int = N_MELS) -> F64:
    """Log-mel spectrogram in dB, shape (frames, n_mels), floored ``TOP_DB`` under ``ref``
    (default: its own maximum)."""
    mel = stft_power(x) @ mel_filterbank(sr=sr, n_mels=n_mels).T
    db = 10 * np.log10(np.maximum(mel, 1e-20))
    top = (db.max() if db.size else 0.0) if ref is None else ref
    return np.maximum(db, top - TOP_DB)


def _align(a: F32, b: F32) -> tuple[F32, F32]:
    n = min(a.shape[0], b.shape[0])
    return a[:n], b[:n]


# -- the metrics -------------------------------------------------------------------------


def mel_distance_db(rendered: F32, true: F32, *, sr: int) -> float:
    """Mean over frames of the RMS (over mel bands) dB difference; 0 when identical."""
    r, t = _align(rendered, true)
    if r.shape[0] == 0:
        return 0.0
    lt = log_mel(t, sr=sr)
    ref = float(lt.max())
    if np.max(np.abs(t)) == 0:  # a silent truth: measure against the rendered maximum
        ref = float(log_mel(r, sr=sr).max())
        lt = np.maximum(lt, ref - TOP_DB)
    lr = log_mel(r, sr=sr, ref=ref)
    lr = np.maximum(lr, ref - TOP_DB)
    lt = np.maximum(lt, ref - TOP_DB)
    return float(np.mean(np.sqrt(np.mean((lr - lt) ** 2, axis=1))))


def loudness_envelope(x: F32, *, sr: int, fps: float = C.FPS) -> F64:
    """RMS level in dB per brain tick (window = one hop), floored at -100 dB."""
    hop = max(1, round(sr / fps))
    n = x.shape[0] // hop
    if n == 0:
        return np.zeros(0)
    ms = np.mean(np.asarray(x[: n * hop], np.float64).reshape(n, hop) ** 2, axis=1)
    return 10 * np.log10(np.maximum(ms, 1e-10))


def envelope_corr(rendered: F32, true: F32, *, sr: int, fps: float = C.FPS) -> float:
    """Pearson correlation of the loudness envelopes, in [-1, 1].

    Two flat envelopes that are equal give 1; a flat envelope against a moving one gives
    0 (nothing follows anything).
    """
    r, t = _align(rendered, true)
    a, b = loudness_envelope(r, sr=sr, fps=fps), loudness_envelope(t, sr=sr, fps=fps)
    if a.shape[0] < 2:
        return 1.0 if np.allclose(a, b) else 0.0
    sa, sb = a.std(), b.std()
    if sa < 1e-9 or sb < 1e-9:
        return 1.0 if (sa < 1e-9 and sb < 1e-9 and np.allclose(a, b, atol=1e-6)) else 0.0
    return float(np.clip(np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb), -1.0, 1.0))


def analytic_power(x: F32) -> F64:
    """``|x + j hilbert(x)|^2`` through the FFT: the power envelope without the 2f ripple."""
    x = np.asarray(x, np.float64)
    n = x.shape[0]
    X = np.fft.fft(x)
    h = np.zeros(n)
    if n % 2 == 0:
        h[0] = h[n // 2] = 1
        h[1 : n // 2] = 2
    else:
        h[0] = 1
        h[1 : (n + 1) // 2] = 2
    return np.abs(np.fft.ifft(X * h)) ** 2


def modulation_spectrum(x: F32, *, sr: int, segment: float = 1.5) -> tuple[F64, F64]:
    """Welch power spectrum of the mean-normalised power envelope: (freqs in Hz, power)."""
    env = analytic_power(x)
    m = env.mean() if env.size else 0.0
    # ~segment seconds, a power of two, never longer than the signal (a zero-padded tail
    # would act as a rectangular window and smear every line)
    nseg = int(2 ** np.round(np.log2(segment * sr)))
    nseg = max(256, min(nseg, int(2 ** np.floor(np.log2(max(env.shape[0], 2))))))
    if m <= 0:
        return np.fft.rfftfreq(nseg, 1 / sr), np.zeros(nseg // 2 + 1)
    e = env / m - 1.0
    if e.shape[0] < nseg:
        e = np.pad(e, (0, nseg - e.shape[0]))
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(nseg) / nseg)
    step = nseg // 2
    acc = np.zeros(nseg // 2 + 1)
    count = 0
    starts = list(range(0, e.shape[0] - nseg + 1, step))
    if starts[-1] + nseg < e.shape[0]:
        starts.append(e.shape[0] - nseg)  # the tail too
    for i in starts:
        seg = e[i : i + nseg]
        acc += np.abs(np.fft.rfft((seg - seg.mean()) * w)) ** 2
        count += 1
    return np.fft.rfftfreq(nseg, 1 / sr), acc / (max(count, 1) * np.sum(w**2))


def frame_artifact_db(x: F32, *, sr: int, fps: float = C.FPS, harmonics: int = HARMONICS,
                      floor: float = 1e-12) -> float:
    """Energy at ``k * fps`` in the power envelope over its neighbourhood, in dB (see module)."""
    if x.shape[0] < 4 or not np.any(x):
        return 0.0
    f, p = modulation_spectrum(x, sr=sr)
    p = p + floor
    df = f[1] - f[0]
    peak_e = 0.0
    base_e = 0.0
    for k in range(1, harmonics + 1):
        fk = k * fps
        if fk + 10 > sr / 2:
            break
        d = np.abs(f - fk)
        peak = d <= 1.5 + df / 2
        neigh = (d <= 10) & (d > 3)
        peak_e += float(p[peak].sum())
        base_e += float(np.median(p[neigh])) * int(peak.sum())
    if base_e <= 0:
        return 0.0
    return float(10 * np.log10(peak_e / base_e))


def rms_dbfs(x: F32) -> float:
    """RMS in dBFS (full scale = 1.0), floored at -150."""
    if x.shape[0] == 0:
        return FLOOR_DBFS
    rms = float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)))
    return max(FLOOR_DBFS, 20 * np.log10(rms)) if rms > 0 else FLOOR_DBFS


def level_db(rendered: F32, true: F32) -> float:
    """``rms_dbfs(rendered) - rms_dbfs(true)`` over their common length, in dB."""
    r, t = _align(rendered, true)
    return rms_dbfs(r) - rms_dbfs(t)
