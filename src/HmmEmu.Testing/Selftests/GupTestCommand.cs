namespace HmmEmu.Testing.Selftests;

/// <summary>The commands of the kernel's gup_test module (/sys/kernel/debug/gup_test) that hmm-tests uses.</summary>
public enum GupTestCommand
{
    /// <summary>GUP_BASIC_TEST: get_user_pages, then put the pages.</summary>
    GupBasicTest,

    /// <summary>GUP_FAST_BENCHMARK: get_user_pages_fast, then put the pages.</summary>
    GupFastBenchmark,

    /// <summary>PIN_FAST_BENCHMARK: pin_user_pages_fast, then unpin.</summary>
    PinFastBenchmark,

    /// <summary>PIN_LONGTERM_BENCHMARK: pin_user_pages with FOLL_LONGTERM, then unpin.</summary>
    PinLongtermBenchmark,
}
