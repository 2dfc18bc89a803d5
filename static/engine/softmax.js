/* The softmax, once for the engine: the served probabilities (predict.js, with the card's temperature and
   logit offsets) and a personal read-out's (readout.js, with neither). */
export function softmax(logits, temperature = 1, offsets = null) {
  const scaled = Array.from(logits, (v, k) => v / temperature + (offsets ? offsets[k] : 0));
  const top = Math.max(...scaled);
  const exp = scaled.map((v) => Math.exp(v - top));
  const total = exp.reduce((a, b) => a + b, 0);
  return exp.map((v) => v / total);
}
