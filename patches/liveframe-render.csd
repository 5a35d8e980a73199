<CsoundSynthesizer>
; liveframe offline render instrument: the 2015 granular render path.
;
; `liveframe render --mode csound` writes every brain block, one after another, into a
; float WAV (passed as the macro TABLE) and a score with one note per grain:
;   i1  onset(s)  duration(s)  gain  table-offset(samples)  envelope(1 hann, 0 none)
; The score is read from grains.sco in the working directory (#include in CsScore).
; Each grain reads its samples from the table, sample for sample, shaped by a symmetric
; Hann envelope (zero at both ends, so grains never click); a grain brain's parent block
; is already windowed and plays with envelope 0. Run it by hand, in the folder holding
; grains.sco, as:
;   csound -d -f -W --sample-rate=22050 --omacro:TABLE=blocks.wav \
;          -o out.wav liveframe-render.csd
<CsOptions>
-d -m0
</CsOptions>
<CsInstruments>
sr = 22050
ksmps = 1                       ; every grain starts and ends on its exact sample
nchnls = 1
0dbfs = 1

; GEN01, deferred size (0): the table is exactly as long as the file, no normalisation
gitab ftgen 1, 0, 0, -1, "$TABLE", 0, 0, 1

instr 1
  igain = p4
  ioff  = p5
  ienv  = p6
  inum  = p3 * sr                  ; grain length in samples
  aidx  line 0, p3, inum           ; 0, 1, 2, ... one step per sample
  asig  table aidx + ioff + 0.5, gitab
  if ienv == 0 then
    aenv = 1
  else
    aenv = 0.5 - 0.5 * cos(2 * $M_PI * (aidx + 0.5) / inum)
  endif
  out asig * aenv * igain
endin
</CsInstruments>
<CsScore>
#include "grains.sco"
</CsScore>
</CsoundSynthesizer>
