from pluralign.launch import main

main()
