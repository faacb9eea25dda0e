/*
 * An SSDT whose _INI writes and reads 16 bytes of ordinary guest RAM through a SystemMemory
 * operation region: what BadAML does to a confidential guest's private memory. Used by
 * boot-check.sh and tests/build/test_badaml.py (iasl -p ssdt-sysmem ssdt-sysmem.asl).
 */
DefinitionBlock ("", "SSDT", 2, "CVMLNT", "SYSMEM", 0x00000001)
{
    Scope (\_SB)
    {
        /* 16 bytes of ordinary guest RAM at 1 MiB + 64 KiB */
        OperationRegion (TMEM, SystemMemory, 0x00110000, 0x10)
        Field (TMEM, AnyAcc, NoLock, Preserve)
        {
            WORD, 32
        }

        Method (_INI, 0, NotSerialized)
        {
            WORD = 0xC0FFEE42
            Debug = "cvmlint-ssdt: SystemMemory read back:"
            Debug = WORD
        }
    }
}
