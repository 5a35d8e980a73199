<CsoundSynthesizer>
<CsOptions>
-odac -d -m0 --sample-accurate
</CsOptions>
<CsInstruments>
; liveframe-grains.csd: plays, in real time, the grains that `liveframe play|live
; --csound` sends (Csound 6.18, double precision). `liveframe play CLIP --csound` starts it
; itself, on liveframe's own audio backend and at the device's rate; to run it by hand:
;
;   csound -+rtaudio=jack -odac:system:playback_ --sample-rate=48000 \
;          patches/liveframe-grains.csd     on JACK at JACK's rate, both speakers, port 7770
;   csound --sample-rate=48000 patches/liveframe-grains.csd     default sound card
;   ... --omacro:PORT=7771     another port
;   ... --omacro:WAV=out.wav   also write what it plays (16-bit mono WAV)
;   ... --omacro:LATENCY=0.2   more jitter margin (seconds, default 0.1)
;   ... --smacro:DUR=60        stop after 60 s (a *score* macro; default: never)
;
; The instrument has no rate of its own: the rate comes from the command line
; (--sample-rate, 44100 when none is given) and must be the device's; on JACK, JACK's
; (`jack_samplerate` says it; a rate that differs is refused by some Csound versions,
; "rtjack: sample rate ... does not match", and plays at the wrong pitch on others).
; A bare -odac on JACK connects only the first output: name the ports' prefix.
;
; One message per grain (in ola/raw mode, one per tick carrying the tick's output hop):
;
;   /liveframe/grain  i pos  i n  i sr  f amp  i env  b samples
;     pos      position of the first sample in the sender's output timeline, in samples
;              at the brain rate sr from tick 0 (what GranularSynth plays there)
;     n        number of samples in the blob (at most 4000)
;     sr       the brain's sample rate in Hz
;     amp      amplitude factor: the grain's gain in the synth times the instrument's
;              gain (0 when muted)
;     env      1: shape with a symmetric Hann envelope, sample k of n times
;              0.5 - 0.5 cos(2 pi (k + 0.5) / n), as liveframe's GranularSynth does;
;              0: already shaped, play as is
;     samples  blob of n little-endian 64-bit floats (Csound's MYFLT): OSClisten's "G"
;              type copies it into a function table.
;
; Every grain is scheduled sample-accurately at pos/sr + LATENCY seconds after the first
; one arrived, so network and producer jitter below LATENCY is inaudible; the clock
; re-anchors when the sender restarts or falls more than a second behind.

; sr: none here, the command line's --sample-rate (Csound's default: 44100)
ksmps = 32
nchnls = 2
0dbfs = 1

#ifndef PORT
#define PORT #7770#
#end
#ifndef LATENCY
#define LATENCY #0.1#
#end

giosc OSCinit $PORT
giSlots = 256         ; receive tables, used round robin (a grain copies its own at once)
giBase = 1000         ; table numbers giBase .. giBase+giSlots-1
giMaxN = 4096
gamix init 0

instr 1  ; listener: drain every pending message each k-cycle, start a grain for each
  ii = 0
  while ii < giSlots do
    itab ftgen giBase + ii, 0, -giMaxN, -2, 0
    ii += 1
  od
  kslot init 0
  kft init giBase
  kpos init 0
  kn init 0
  ksrb init 22050
  kamp init 0
  kenv init 0
  kt0 init -1
  kp0 init 0
  know timeinsts
next:
  kft = giBase + kslot
  kans OSClisten giosc, "/liveframe/grain", "iiifiG", kpos, kn, ksrb, kamp, kenv, kft
  if kans == 1 then
    if kn > 0 && kn <= giMaxN && ksrb > 0 then
      kp = kpos / ksrb
      if kt0 < 0 then
        kt0 = know
        kp0 = kp
      endif
      kdel = $LATENCY + (kp - kp0) - (know - kt0)
      if kdel < -1 || kdel > 10 then  ; the sender restarted or stalled: re-anchor
        kt0 = know
        kp0 = kp
        kdel = $LATENCY
      endif
      kdel = (kdel < 0 ? 0 : kdel)
      event "i", 10, 0, kdel + kn / ksrb + 0.01, kft, kn, ksrb, kamp, kenv, kdel
      kslot = (kslot + 1) % giSlots
    endif
    kgoto next
  endif
  ; at init, after OSClisten has registered its address: grains sent from now on arrive
  prints "liveframe-grains: listening for /liveframe/grain on port %d\n", $PORT
endin

instr 10  ; one grain: p4 table, p5 n, p6 brain rate, p7 amp, p8 env, p9 delay (s)
  iN = p5
  itab ftgentmp 0, 0, -iN, -2, 0
  tableicopy itab, p4         ; our own copy, before the receive table is reused
  ; read position in brain samples: negative until the grain's start
  andx line -p9 * p6, p3, (p3 - p9) * p6
  asig tablei andx, itab, 0, 0, 0
  ; a gate on [0, iN), one brain sample wide at each edge: silence outside the grain
  aon limit andx + 1, 0, 1
  aoff limit iN - andx, 0, 1
  aenv = aon * aoff
  if p8 == 1 then
    ; the symmetric Hann of GranularSynth: sample k of n gets 0.5 - 0.5 cos(2 pi (k+0.5)/n)
    aph limit (andx + 0.5) / iN, 0, 1
    aenv *= 0.5 - 0.5 * cos(2 * $M_PI * aph)
  endif
  gamix += asig * aenv * p7
endin

instr 100  ; output (and the optional WAV copy)
  aout = gamix
  gamix = 0
  aout clip aout, 0, 0.95
  outs aout, aout
#ifdef WAV
  fout "$WAV", 14, aout
#end
endin

</CsInstruments>
<CsScore>
#ifdef DUR
i 1 0 $DUR
i 100 0 $DUR
#else
i 1 0 z
i 100 0 z
#end
</CsScore>
</CsoundSynthesizer>
