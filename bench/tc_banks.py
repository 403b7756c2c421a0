#!/usr/bin/env python3
"""tc_banks.py - shared-memory wavefronts per k-step of the TF32 A-fragment loads (tc.cuh) for
each layer and candidate floats-per-position stride: four 4-byte loads (run 7) or two 8-byte
paired loads (run 8).  A half warp's 8-byte loads are one wavefront when its 4 rows x 8 floats
fall on distinct banks.  Picks Lay's TC strides (fused.cuh); docs/PERF_CUDA.md run 8."""
def wf(addrs_words_per_lane):  # list of lists of word addrs per lane (one request)
    banks={}
    for ws in addrs_words_per_lane:
        for w in ws: banks.setdefault(w%32,set()).add(w)
    return max(len(v) for v in banks.values())
def cost(rowaddr, nrows_tiles, mode):
    # rowaddr(m) -> float offset of row m (k offset 0); returns avg wavefronts per k-step
    tot=0; n=0
    for mt in range(nrows_tiles):
        for h in (0,1):
            rows=[rowaddr(mt*16+g+8*h) for g in range(8)]
            if mode==32:
                for col in (0,4):
                    tot+=wf([[rows[g]+t+col] for g in range(8) for t in range(4)])
            else:
                lanes=[[rows[g]+2*t, rows[g]+2*t+1] for g in range(8) for t in range(4)]
                tot+=wf(lanes[:16])+wf(lanes[16:])
        n+=1
    return tot/n
def fwd(WO,HO,WP,PSI,S,IMG=2,IS=None):
    M=IMG*HO*WO
    IS=IS or 100000
    def ra(m):
        m=min(m,M-1); img=m//(HO*WO); q=m%(HO*WO); oh=q//WO; ow=q%WO
        return img*IS+(oh*S*WP+ow*S)*PSI
    return ra,(M+15)//16
def bwd(U,gw,GC,D0h=0,D0w=0,IMG=2,IS=100000):
    M=IMG*U*U
    def ra(m):
        m=min(m,M-1); img=m//(U*U); q=m%(U*U); u=q//U; v=q%U
        return img*IS+((u+D0h)*gw+v+D0w)*GC
    return ra,(M+15)//16
import sys
cfg={
 'F1':lambda C: fwd(8,8,18,C,2,IS=18*18*C),
 'F2':lambda C: fwd(4,4,10,C,2,IS=100*C),
 'F3':lambda C: fwd(2,2,6,C,2,IS=36*C),
 'B1':lambda C: bwd(8,9,C,IS=81*C),
 'B2':lambda C: bwd(4,5,C,IS=25*C),
 'B3':lambda C: bwd(2,3,C,IS=9*C),
 'B0':lambda C: bwd(14,16,C,IS=256*C),
}
# run 7's strides (4-byte loads)
cur={'F1':18,'F2':36,'F3':68,'B1':36,'B2':68,'B3':68,'B0':20}
for k,f in cfg.items():
    ra,nt=f(cur[k])
    line=f"{k} run-7 C={cur[k]}: lds32 {cost(ra,nt,32):.1f} wf/kstep;  lds64:"
    best=[]
    for C in range(cur[k]-4, cur[k]+13, 2):
        if C < {'F1':16,'F2':32,'F3':64,'B1':32,'B2':64,'B3':64,'B0':16}[k]: continue
        ra,nt=f(C); best.append((cost(ra,nt,64),C))
    line+=' '.join(f"C{C}:{c:.1f}" for c,C in sorted(best)[:5])
    print(line)
