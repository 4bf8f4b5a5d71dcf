/**
 * Matmul FLOPs (2·m·k·n per product) of one teacher-forced T5 forward, counted from the shapes
 * the forward actually multiplies. Elementwise work (norms, softmax, activations) is excluded,
 * so FLOPs / time is directly comparable with the backend's 2D matmul rate.
 */
import type { T5Config } from './config.ts';

export function t5ForwardFlops(cfg: T5Config, batch: number, encLen: number, decLen: number): number {
  const d = cfg.dModel;
  const inner = cfg.numHeads * cfg.dKv;
  const ffIn = cfg.isGatedAct ? 2 : 1;
  const mm = (m: number, k: number, n: number) => 2 * m * k * n;
  const re = batch * encLen;
  const rd = batch * decLen;
  const attnCore = (sq: number, sk: number) => batch * cfg.numHeads * (mm(sq, cfg.dKv, sk) + mm(sq, sk, cfg.dKv));
  const ffn = (rows: number) => ffIn * mm(rows, d, cfg.dFf) + mm(rows, cfg.dFf, d);
  const enc = cfg.numLayers * (4 * mm(re, d, inner) + attnCore(encLen, encLen) + ffn(re));
  const dec =
    cfg.numDecoderLayers *
    (4 * mm(rd, d, inner) + attnCore(decLen, decLen) + // self-attention
      2 * mm(rd, d, inner) + 2 * mm(re, d, inner) + attnCore(decLen, encLen) + // cross: q, o on decoder rows; k, v on encoder rows
      ffn(rd));
  return enc + dec + mm(rd, d, cfg.vocabSize);
}
