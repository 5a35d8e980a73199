"""liveframe: a real-time audiovisual performance instrument.

A camera or a video file feeds a small neural "brain" that turns every video frame into a
block of audio; the blocks are overlap-added and played by a low-latency audio callback.
"""

__version__ = "0.1.0"
