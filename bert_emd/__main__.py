import sys

from bert_emd.cli import main

sys.exit(main())
