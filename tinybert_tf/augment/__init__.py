"""TinyBERT data augmentation (paper Alg. 1, the official code's behaviour).

- `AugmentConfig`: every knob (p_t, N_a, K, stop words, GloVe range, MLM input).
- `augment_dataset(text_a, text_b, labels, config, mlm, glove, cache_dir)`:
  a dataset in, the augmented dataset out (originals kept, labels repeated).
- `Augmenter`: the same with its models loaded once; `.candidates(sentences)`.
- `load_glove(path)`: word vectors as gensim KeyedVectors.

Example (the offline default: no masked LM, GloVe 6B 50d from its package):

```python
import numpy as np
from tinybert_tf.augment import AugmentConfig, augment_dataset
data = augment_dataset(["The film was great."], None, np.array([1]),
                       AugmentConfig(num_samples=4))
data.text_a[0], len(data.text_a), data.labels  # the original, then variants
```
With a masked LM (the official method for one-piece words), add
`mlm="bert-base-uncased"` (any BertForMaskedLM checkpoint); `AugmentConfig.
for_task("sst2")` gives the official N of a GLUE task.
See docs/augmentation.md.
"""

from tinybert_tf.augment.augmenter import (NO_MLM_MESSAGE, AugmentedData,
                                           Augmenter, SentenceCandidates,
                                           augment_dataset, sample_variants)
from tinybert_tf.augment.cache import default_cache_dir
from tinybert_tf.augment.config import (STOP_WORDS, TASK_NUM_SAMPLES,
                                        AugmentConfig)
from tinybert_tf.augment.glove import GloveNeighbours, load_glove
from tinybert_tf.augment.masked_lm import MaskedLMCandidates
from tinybert_tf.augment.words import WordSplitter, is_replaceable
