from trek_audit.cli import main

main()
