import sys

from daemon.ingest.process import main

sys.exit(main())
