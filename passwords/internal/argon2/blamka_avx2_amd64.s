//go:build amd64 && gc && !purego

// The AVX2 block function of Argon2. Its design is libargon2's opt AVX2
// fill_block (blamka-round-opt.h, BLAKE2_ROUND_1 and BLAKE2_ROUND_2): the
// 1 KiB block is 32 YMM words of four uint64 each, two BLAKE2b states are
// permuted side by side, and (un)diagonalisation is done with VPERMQ in
// the row rounds and VPBLENDD+VPSHUFD in the column rounds. The rotation
// constants and the BlaMka multiply follow x/crypto's SSE4 code
// (blamka_amd64.s, under this directory's LICENSE); libargon2 is the
// reference implementation of Argon2 (CC0 or Apache 2.0).

#include "textflag.h"

// Registers of the two BLAKE2b states permuted together: A0 B0 C0 D0 hold
// v0..v15 of the first (four lanes each), A1 B1 C1 D1 those of the second.
// T0 and T1 are scratch, R24 and R16 the VPSHUFB masks of the rotations.
#define A0 Y0
#define B0 Y1
#define C0 Y2
#define D0 Y3
#define A1 Y4
#define B1 Y5
#define C1 Y6
#define D1 Y7
#define T0 Y8
#define T1 Y9
#define R24 Y10
#define R16 Y11

// BLAMKA: x = x + y + 2*lo32(x)*lo32(y), in each lane; t is clobbered.
#define BLAMKA(x, y, t) \
	VPMULUDQ y, x, t; \
	VPADDQ   y, x, x; \
	VPADDQ   t, t, t; \
	VPADDQ   t, x, x

// G1 and G2: the two halves of BLAKE2b's G with BlaMka's additions, on
// the columns (a, b, c, d) of both states at once:
//   G1: a = a⊞b; d = (d^a)>>>32; c = c⊞d; b = (b^c)>>>24
//   G2: a = a⊞b; d = (d^a)>>>16; c = c⊞d; b = (b^c)>>>63
#define G1(a0, b0, c0, d0, a1, b1, c1, d1) \
	BLAMKA(a0, b0, T0); \
	BLAMKA(a1, b1, T1); \
	VPXOR   a0, d0, d0; \
	VPXOR   a1, d1, d1; \
	VPSHUFD $0xb1, d0, d0; \
	VPSHUFD $0xb1, d1, d1; \
	BLAMKA(c0, d0, T0); \
	BLAMKA(c1, d1, T1); \
	VPXOR   c0, b0, b0; \
	VPXOR   c1, b1, b1; \
	VPSHUFB R24, b0, b0; \
	VPSHUFB R24, b1, b1

#define G2(a0, b0, c0, d0, a1, b1, c1, d1) \
	BLAMKA(a0, b0, T0); \
	BLAMKA(a1, b1, T1); \
	VPXOR   a0, d0, d0; \
	VPXOR   a1, d1, d1; \
	VPSHUFB R16, d0, d0; \
	VPSHUFB R16, d1, d1; \
	BLAMKA(c0, d0, T0); \
	BLAMKA(c1, d1, T1); \
	VPXOR   c0, b0, b0; \
	VPXOR   c1, b1, b1; \
	VPADDQ  b0, b0, T0; \
	VPADDQ  b1, b1, T1; \
	VPSRLQ  $63, b0, b0; \
	VPSRLQ  $63, b1, b1; \
	VPXOR   T0, b0, b0; \
	VPXOR   T1, b1, b1

// ROUND1: the BLAKE2b round of two rows of the block. Each state is one
// row, v0..v15 in order: A = v0..v3, B = v4..v7, C = v8..v11, D = v12..v15,
// so the diagonal step rotates B, C and D by one, two and three lanes.
#define ROUND1 \
	G1(A0, B0, C0, D0, A1, B1, C1, D1); \
	G2(A0, B0, C0, D0, A1, B1, C1, D1); \
	VPERMQ $0x39, B0, B0; \
	VPERMQ $0x4e, C0, C0; \
	VPERMQ $0x93, D0, D0; \
	VPERMQ $0x39, B1, B1; \
	VPERMQ $0x4e, C1, C1; \
	VPERMQ $0x93, D1, D1; \
	G1(A0, B0, C0, D0, A1, B1, C1, D1); \
	G2(A0, B0, C0, D0, A1, B1, C1, D1); \
	VPERMQ $0x93, B0, B0; \
	VPERMQ $0x4e, C0, C0; \
	VPERMQ $0x39, D0, D0; \
	VPERMQ $0x93, B1, B1; \
	VPERMQ $0x4e, C1, C1; \
	VPERMQ $0x39, D1, D1

// ROUND2: the BLAKE2b round of four columns 4i..4i+3 (of uint64s) of the
// block's eight rows, which are two of the column states of the reference
// (columns 4i, 4i+1 and 4i+2, 4i+3), one per 128-bit half. A0, A1, B0,
// B1, ... hold rows 0, 1, 2, 3, ...: in each half A0 = v0 v1, A1 = v2 v3,
// B0 = v4 v5, B1 = v6 v7, C0 = v8 v9, C1 = v10 v11, D0 = v12 v13,
// D1 = v14 v15. The diagonal step needs A0 with v5 v6, v10 v11, v15 v12
// and A1 with v7 v4, v8 v9, v13 v14: C0 and C1 swap roles, B and D are
// recombined by blending qwords and swapping them within each half.
#define ROUND2 \
	G1(A0, B0, C0, D0, A1, B1, C1, D1); \
	G2(A0, B0, C0, D0, A1, B1, C1, D1); \
	VPBLENDD $0xcc, B1, B0, T0; \
	VPBLENDD $0x33, B1, B0, T1; \
	VPSHUFD  $0x4e, T0, B1; \
	VPSHUFD  $0x4e, T1, B0; \
	VPBLENDD $0xcc, D1, D0, T0; \
	VPBLENDD $0x33, D1, D0, T1; \
	VPSHUFD  $0x4e, T0, D0; \
	VPSHUFD  $0x4e, T1, D1; \
	G1(A0, B0, C1, D0, A1, B1, C0, D1); \
	G2(A0, B0, C1, D0, A1, B1, C0, D1); \
	VPBLENDD $0xcc, B1, B0, T0; \
	VPBLENDD $0x33, B1, B0, T1; \
	VPSHUFD  $0x4e, T0, B0; \
	VPSHUFD  $0x4e, T1, B1; \
	VPBLENDD $0xcc, D1, D0, T0; \
	VPBLENDD $0x33, D1, D0, T1; \
	VPSHUFD  $0x4e, T0, D1; \
	VPSHUFD  $0x4e, T1, D0

// LOADR loads the YMM word at off of in1^in2 (AX, BX) into r.
#define LOADR(off, r) \
	VMOVDQU off(AX), r; \
	VPXOR   off(BX), r, r

// XOROUT xors r into the YMM word at off of out (DX); T0 is clobbered.
#define XOROUT(off, r) \
	VPXOR   off(DX), r, T0; \
	VMOVDQU T0, off(DX)

// STOREROWS stores the state registers as two rows, 256 bytes from p;
// LOADCOLUMNS loads four columns of the eight rows, one row in each
// register from A0 A1 B0 B1 C0 C1 D0 D1, from p on in steps of 128 bytes.
#define STOREROWS(p) \
	VMOVDQU A0, 0(p); \
	VMOVDQU B0, 32(p); \
	VMOVDQU C0, 64(p); \
	VMOVDQU D0, 96(p); \
	VMOVDQU A1, 128(p); \
	VMOVDQU B1, 160(p); \
	VMOVDQU C1, 192(p); \
	VMOVDQU D1, 224(p)

#define LOADCOLUMNS(p) \
	VMOVDQU 0(p), A0; \
	VMOVDQU 128(p), A1; \
	VMOVDQU 256(p), B0; \
	VMOVDQU 384(p), B1; \
	VMOVDQU 512(p), C0; \
	VMOVDQU 640(p), C1; \
	VMOVDQU 768(p), D0; \
	VMOVDQU 896(p), D1

// func processBlockAVX2(out, in1, in2 *block, xor bool)
//
// Computes R = in1^in2, then out = R ^ P(R), or out ^= R ^ P(R) when xor
// is set, where P is BlaMka's permutation (eight row rounds, then eight
// column rounds). out may be in1 or in2.
//
// First loop, per two rows (256 bytes): R is loaded, written to out (or
// xored into it), permuted by ROUND1 and kept in the 1 KiB frame (SI, 32
// byte aligned). Second loop, per four columns: the frame is permuted by
// ROUND2 and xored into out, which by then holds R (or the old out ^ R).
// Requires: AVX2
TEXT ·processBlockAVX2(SB), 0, $1056-25
	MOVQ    out+0(FP), DX
	MOVQ    in1+8(FP), AX
	MOVQ    in2+16(FP), BX
	MOVBLZX xor+24(FP), R8
	LEAQ    31(SP), SI
	ANDQ    $-32, SI
	VMOVDQU ·rot24<>+0(SB), R24
	VMOVDQU ·rot16<>+0(SB), R16
	MOVQ    SI, DI
	MOVQ    $4, CX

rows:
	LOADR(0, A0)
	LOADR(32, B0)
	LOADR(64, C0)
	LOADR(96, D0)
	LOADR(128, A1)
	LOADR(160, B1)
	LOADR(192, C1)
	LOADR(224, D1)
	TESTQ   R8, R8
	JNZ     xorrows
	STOREROWS(DX)
	JMP     permuterows

xorrows:
	XOROUT(0, A0)
	XOROUT(32, B0)
	XOROUT(64, C0)
	XOROUT(96, D0)
	XOROUT(128, A1)
	XOROUT(160, B1)
	XOROUT(192, C1)
	XOROUT(224, D1)

permuterows:
	ROUND1
	STOREROWS(DI)
	ADDQ    $256, AX
	ADDQ    $256, BX
	ADDQ    $256, DX
	ADDQ    $256, DI
	DECQ    CX
	JNZ     rows

	SUBQ    $1024, DX
	MOVQ    $4, CX

columns:
	LOADCOLUMNS(SI)
	ROUND2
	XOROUT(0, A0)
	XOROUT(128, A1)
	XOROUT(256, B0)
	XOROUT(384, B1)
	XOROUT(512, C0)
	XOROUT(640, C1)
	XOROUT(768, D0)
	XOROUT(896, D1)
	ADDQ    $32, SI
	ADDQ    $32, DX
	DECQ    CX
	JNZ     columns

	VZEROUPPER
	RET

// VPSHUFB masks rotating each uint64 right by 24 and by 16 bits (x/crypto's
// c40 and c48, once per 128-bit half).
DATA ·rot24<>+0(SB)/8, $0x0201000706050403
DATA ·rot24<>+8(SB)/8, $0x0a09080f0e0d0c0b
DATA ·rot24<>+16(SB)/8, $0x0201000706050403
DATA ·rot24<>+24(SB)/8, $0x0a09080f0e0d0c0b
GLOBL ·rot24<>(SB), RODATA|NOPTR, $32

DATA ·rot16<>+0(SB)/8, $0x0100070605040302
DATA ·rot16<>+8(SB)/8, $0x09080f0e0d0c0b0a
DATA ·rot16<>+16(SB)/8, $0x0100070605040302
DATA ·rot16<>+24(SB)/8, $0x09080f0e0d0c0b0a
GLOBL ·rot16<>(SB), RODATA|NOPTR, $32
