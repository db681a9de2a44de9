// CPcapShim has only header-level declarations; SwiftPM needs one source file.
#include "CPcapShim.h"
