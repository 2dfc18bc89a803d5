/* The one rule for a low-confidence label, utils/model/predict.py's is_uncertain in the browser: the engine
   marks its faces with it and the Analyse page marks them again when the threshold moves.
   tests/test_browser_engine.py holds it to the Python function. */
export function isUncertain(confidence, threshold) {
  return confidence < threshold;
}
